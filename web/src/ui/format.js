// Dates, times, durations and money for people, in the browser's locale and time zone.

const dayFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long",
  day: "numeric",
  month: "long",
});
const dayYearFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long",
  day: "numeric",
  month: "long",
  year: "numeric",
});
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const shortFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  hour: "numeric",
  minute: "2-digit",
});

export function parseDate(value) {
  if (!value) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** The local calendar day of a date as "YYYY-MM-DD" (for grouping and date inputs). */
export function dayKey(date) {
  const y = date.getFullYear();
  const m = String(date.getMonth() + 1).padStart(2, "0");
  const d = String(date.getDate()).padStart(2, "0");
  return `${y}-${m}-${d}`;
}

/** "HH:MM" in local time (for time inputs). */
export function timeKey(date) {
  return `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}`;
}

export function formatDay(date, now = new Date()) {
  const today = dayKey(now);
  const key = dayKey(date);
  const tomorrow = new Date(now);
  tomorrow.setDate(now.getDate() + 1);
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  const label =
    date.getFullYear() === now.getFullYear() ? dayFormat.format(date) : dayYearFormat.format(date);
  if (key === today) return `Today · ${label}`;
  if (key === dayKey(tomorrow)) return `Tomorrow · ${label}`;
  if (key === dayKey(yesterday)) return `Yesterday · ${label}`;
  return label;
}

export function formatTime(date) {
  return timeFormat.format(date);
}

export function formatTimeRange(start, end) {
  return `${formatTime(start)} – ${formatTime(end)}`;
}

export function formatDateTime(date) {
  return shortFormat.format(date);
}

/** 45 -> "45 min", 60 -> "1 h", 90 -> "1 h 30". */
export function formatMinutes(minutes) {
  const m = Math.round(minutes);
  if (m < 60) return `${m} min`;
  const hours = Math.floor(m / 60);
  const rest = m % 60;
  return rest ? `${hours} h ${String(rest).padStart(2, "0")}` : `${hours} h`;
}

/** Seconds in the classroom: "0 min", "12 min", "1 h 05". */
export function formatSeconds(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  if (total > 0 && total < 60) return "under a minute";
  return formatMinutes(Math.floor(total / 60));
}

export function formatMoney(cents, currency = "USD") {
  if (typeof cents !== "number") return "—";
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
}

/** A running clock for the classroom: "04:07" or "1:02:09". */
export function formatClock(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function initials(name) {
  const parts = String(name || "?")
    .trim()
    .split(/\s+/)
    .filter(Boolean);
  const letters =
    parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] ?? "?").slice(0, 2);
  return letters.toUpperCase();
}
