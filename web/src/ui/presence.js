// Who is in the classroom, from the newest presence snapshot.

import { h, replace } from "./dom.js";
import { initials } from "./format.js";

export function renderPresenceList(container, participants, { emptyText }) {
  if (!participants.length) {
    replace(container, h("p", { class: "muted presence-empty" }, emptyText));
    return;
  }
  replace(
    container,
    h(
      "ul",
      { class: "presence", role: "list" },
      participants.map((p) =>
        h(
          "li",
          {
            class: `presence-item status-${p.status}`,
            dataset: { userId: p.user_id, status: p.status },
          },
          h("span", { class: "avatar small", "aria-hidden": "true" }, initials(p.name)),
          h("span", { class: "presence-name" }, p.name || p.user_id),
          h("span", { class: "muted small" }, p.role === "tutor" ? "Tutor" : "Student"),
          h(
            "span",
            { class: `status-dot status-${p.status}` },
            p.status === "reconnecting" ? "Reconnecting…" : "In the classroom",
          ),
        ),
      ),
    ),
  );
}
