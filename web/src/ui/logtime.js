// The log-time pop-up: time from 5 minutes to 1 h 30 in 5-minute steps, pre-selected with the
// measured overlap, and the recap with a live character count (at least 150 characters).

import { h, nextId } from "./dom.js";
import { formatMinutes } from "./format.js";
import { busy, errorSlot, openDialog } from "./widgets.js";

export const RECAP_MIN = 150;
export const RECAP_MAX = 5000;
export const MINUTE_OPTIONS = Array.from({ length: 18 }, (_, i) => (i + 1) * 5);

/** The recap's length as the server counts it: Unicode code points after trimming. */
export function recapLength(text) {
  return [...text.trim()].length;
}

/** A measured time as one of the options: rounded up to 5 minutes, within 5 … 90. */
export function snapMinutes(minutes) {
  const value = Number(minutes);
  if (!Number.isFinite(value) || value <= 0) return 5;
  return Math.min(90, Math.max(5, Math.ceil(value / 5) * 5));
}

/**
 * Opens the pop-up. `submit(minutes, recap)` performs the completion and resolves with its
 * result; a rejection is shown inside the pop-up, which stays open (e.g. participants_remain).
 * Resolves with the result, or null when the tutor closes it.
 */
export function openLogTimeDialog({ title, submitLabel, suggestedMinutes, overlapNote, submit }) {
  const errors = errorSlot();
  const selected = snapMinutes(suggestedMinutes);
  const minutes = h(
    "select",
    { name: "minutes", autofocus: true },
    MINUTE_OPTIONS.map((m) =>
      h("option", { value: String(m), selected: m === selected }, formatMinutes(m)),
    ),
  );
  const minutesId = nextId("minutes");
  minutes.id = minutesId;
  const recapId = nextId("recap");
  const promptsId = nextId("prompts");
  const countId = nextId("count");
  const recap = h("textarea", {
    id: recapId,
    name: "recap",
    rows: "7",
    maxlength: String(RECAP_MAX),
    required: true,
    "aria-describedby": `${promptsId} ${countId}`,
    placeholder: "Topics covered: …\nHow your tutee did: …\nNext steps: …",
  });
  const count = h("p", {
    id: countId,
    class: "char-count",
    "aria-live": "polite",
    "aria-atomic": "true",
  });
  const button = h(
    "button",
    { type: "submit", class: "btn btn-primary", disabled: true },
    submitLabel,
  );

  function update() {
    const n = recapLength(recap.value);
    const missing = RECAP_MIN - n;
    count.textContent =
      missing > 0
        ? `${n} / ${RECAP_MIN} characters — ${missing} more needed`
        : `${n} characters — long enough`;
    count.classList.toggle("ok", missing <= 0);
    button.disabled = missing > 0;
  }
  recap.addEventListener("input", update);
  update();

  const { done } = openDialog({
    title,
    className: "dialog-logtime",
    build: (close) => {
      const form = h(
        "form",
        { class: "dialog-body", novalidate: true },
        h(
          "div",
          { class: "field" },
          h("label", { for: minutesId }, "Time spent in the session"),
          minutes,
          overlapNote ? h("p", { class: "field-hint" }, overlapNote) : null,
        ),
        h(
          "div",
          { class: "field" },
          h("label", { for: recapId }, "What did you cover?"),
          h(
            "ul",
            { id: promptsId, class: "recap-prompts", "aria-label": "Cover these three points" },
            h("li", {}, "Topics covered"),
            h("li", {}, "How your tutee did"),
            h("li", {}, "Next steps"),
          ),
          recap,
          count,
        ),
        errors.el,
        h(
          "div",
          { class: "dialog-actions" },
          h(
            "button",
            { type: "button", class: "btn btn-secondary", onclick: () => close(null) },
            "Back",
          ),
          button,
        ),
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (recapLength(recap.value) < RECAP_MIN) return;
        errors.clear();
        try {
          const result = await busy(button, () =>
            submit(Number(minutes.value), recap.value.trim()),
          );
          close(result ?? true);
        } catch (err) {
          errors.show(err);
          update();
        }
      });
      return form;
    },
  });
  return done;
}
