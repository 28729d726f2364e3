// Shared pieces of the interface: badges, notices, buttons, modal dialogs.

import { describeError } from "./errors.js";
import { h, nextId, replace } from "./dom.js";
import { stateReasonLabel } from "./session.js";

/** The state as a badge; a missed session says why ("Missed – no-show"). */
export function stateBadge(state, reason = null) {
  return h(
    "span",
    { class: `badge badge-${state}`, dataset: reason ? { state, reason } : { state } },
    stateReasonLabel(state, reason),
  );
}

export function pill(text, kind = "neutral") {
  return h("span", { class: `pill pill-${kind}` }, text);
}

/** An inline message box: kind is info | success | warning | error. */
export function notice(kind, ...content) {
  const role = kind === "error" ? "alert" : "status";
  return h("div", { class: `notice notice-${kind}`, role }, ...content);
}

/** An error region that stays in the page and is announced when filled. */
export function errorSlot() {
  const el = h("div", { class: "error-slot", role: "alert", "aria-live": "assertive" });
  return {
    el,
    show(error) {
      replace(el, typeof error === "string" ? error : describeError(error));
      el.classList.add("visible");
    },
    clear() {
      replace(el);
      el.classList.remove("visible");
    },
  };
}

/** Run an async action from a button: disables it and shows "…" while it runs. */
export async function busy(button, action) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = label;
  }
}

/**
 * A modal dialog on the native <dialog> element: focus moves into it, Escape closes it, focus
 * returns to what opened it. `build(close)` returns the dialog's body. Resolves with the value
 * passed to close(), or null when dismissed.
 */
export function openDialog({ title, description, build, className = "" }) {
  const opener = document.activeElement;
  const titleId = nextId("dialog-title");
  const descId = description ? nextId("dialog-desc") : null;
  const dialog = h("dialog", {
    class: `dialog ${className}`.trim(),
    "aria-labelledby": titleId,
    "aria-describedby": descId,
  });
  let result = null;
  let resolve;
  const done = new Promise((r) => {
    resolve = r;
  });
  const close = (value = null) => {
    result = value;
    if (dialog.open) dialog.close();
  };
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (opener && typeof opener.focus === "function" && opener.isConnected) opener.focus();
    resolve(result);
  });
  dialog.addEventListener("cancel", () => {
    result = null;
  });
  const header = h(
    "header",
    { class: "dialog-header" },
    h("h2", { id: titleId, class: "dialog-title" }, title),
    h(
      "button",
      { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => close(null) },
      "×",
    ),
  );
  dialog.append(header);
  if (description) dialog.append(h("p", { id: descId, class: "dialog-description" }, description));
  dialog.append(build(close, dialog));
  document.body.append(dialog);
  dialog.showModal();
  const first =
    dialog.querySelector("[autofocus]") ??
    dialog.querySelector("select, textarea, input, button:not(.icon-button)");
  if (first) first.focus();
  return { dialog, close, done };
}

/** A yes/no confirmation. */
export function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false }) {
  const { done } = openDialog({
    title,
    build: (close) =>
      h(
        "div",
        { class: "dialog-body" },
        h("p", {}, message),
        h(
          "div",
          { class: "dialog-actions" },
          h(
            "button",
            { type: "button", class: "btn btn-secondary", onclick: () => close(false) },
            "Keep it",
          ),
          h(
            "button",
            {
              type: "button",
              class: `btn ${danger ? "btn-danger" : "btn-primary"}`,
              onclick: () => close(true),
            },
            confirmLabel,
          ),
        ),
      ),
  });
  return done;
}

/** A labelled form field: returns the wrapper; the control gets an id wired to the label. */
export function field(label, control, hint) {
  const id = control.id || nextId("field");
  control.id = id;
  let hintEl = null;
  if (hint) {
    const hintId = nextId("hint");
    hintEl = h("p", { class: "field-hint", id: hintId }, hint);
    control.setAttribute("aria-describedby", hintId);
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}
