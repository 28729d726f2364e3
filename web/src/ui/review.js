// Rating & review: a student rates a completed session once; others see the review.

import { h, nextId, replace } from "./dom.js";
import { isStudentOf } from "./session.js";
import { busy, errorSlot, notice } from "./widgets.js";

const RATING_WORDS = ["", "Poor", "Fair", "Good", "Very good", "Excellent"];

function reviewsOf(session) {
  if (Array.isArray(session.reviews)) return session.reviews;
  if (session.review) return [session.review];
  return [];
}

function stars(rating) {
  const n = Math.max(0, Math.min(5, Number(rating) || 0));
  return h(
    "span",
    { class: "stars", role: "img", "aria-label": `${n} out of 5 stars` },
    "★".repeat(n) + "☆".repeat(5 - n),
  );
}

function showReview(review) {
  return h(
    "div",
    { class: "review" },
    h(
      "p",
      {},
      stars(review.rating),
      " ",
      h(
        "span",
        { class: "muted" },
        `${RATING_WORDS[review.rating] ?? ""} · ${review.student?.name ?? "Student"}`,
      ),
    ),
    review.text ? h("blockquote", { class: "review-text" }, review.text) : null,
  );
}

export function renderReview(app, card, session) {
  const { me, api } = app;
  const headingId = "review-heading";
  const reviews = reviewsOf(session);
  const mine = reviews.find((r) => r.student?.id === me.userId);
  if (!isStudentOf(session, me) || mine) {
    if (!reviews.length) {
      card.hidden = true;
      return;
    }
    card.hidden = false;
    replace(
      card,
      h("h2", { id: headingId }, mine ? "Your review" : "Rating & review"),
      reviews.map(showReview),
    );
    return;
  }

  card.hidden = false;
  const errors = errorSlot();
  const groupId = nextId("rating");
  const textId = nextId("review-text");
  let rating = 0;
  const radios = [1, 2, 3, 4, 5].map((n) => {
    const input = h("input", {
      type: "radio",
      name: groupId,
      value: String(n),
      class: "visually-hidden",
      id: `${groupId}-${n}`,
    });
    input.addEventListener("change", () => {
      rating = n;
      submit.disabled = false;
      paint();
    });
    const label = h(
      "label",
      { for: `${groupId}-${n}`, class: "star", title: RATING_WORDS[n] },
      h("span", { "aria-hidden": "true" }, "★"),
      h("span", { class: "visually-hidden" }, `${n} star${n > 1 ? "s" : ""} — ${RATING_WORDS[n]}`),
    );
    return [input, label];
  });
  const chosen = h(
    "span",
    { class: "muted rating-word", "aria-live": "polite" },
    "Choose a rating",
  );
  function paint() {
    radios.forEach(([, label], i) => label.classList.toggle("on", i < rating));
    chosen.textContent = rating ? `${rating} of 5 — ${RATING_WORDS[rating]}` : "Choose a rating";
  }
  const text = h("textarea", {
    id: textId,
    rows: "4",
    maxlength: "5000",
    placeholder: "What went well? What could be better?",
  });
  const submit = h(
    "button",
    { type: "submit", class: "btn btn-primary", disabled: true },
    "Submit review",
  );
  const form = h(
    "form",
    { class: "review-form", novalidate: true },
    h(
      "fieldset",
      { class: "rating" },
      h("legend", {}, "Your rating"),
      h("div", { class: "star-row" }, radios.flat(), chosen),
    ),
    h("div", { class: "field" }, h("label", { for: textId }, "Your review (optional)"), text),
    errors.el,
    h("div", { class: "form-actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!rating) return errors.show("Choose a rating from 1 to 5 stars.");
    errors.clear();
    try {
      const review = await busy(submit, () => api.review(session.id, rating, text.value.trim()));
      const shown = review?.review ?? review ?? { rating, text: text.value.trim() };
      replace(
        card,
        h("h2", { id: headingId, tabindex: "-1" }, "Your review"),
        notice("success", "Thank you — your review was sent to your tutor."),
        showReview({ ...shown, student: shown.student ?? { id: me.userId, name: me.name } }),
      );
      card.querySelector("h2").focus();
    } catch (err) {
      errors.show(err);
    }
  });
  replace(
    card,
    h("h2", { id: headingId }, "Rating & review"),
    h(
      "p",
      { class: "muted" },
      "How was your session? Your rating and review help your tutor and other students.",
    ),
    form,
  );
}
