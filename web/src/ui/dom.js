// A tiny element builder. Text always goes in through text nodes, never as HTML, so nothing a
// user typed can become markup.

const PROPERTIES = new Set([
  "value",
  "checked",
  "disabled",
  "selected",
  "muted",
  "autoplay",
  "playsInline",
  "srcObject",
  "hidden",
  "indeterminate",
]);

/**
 * h("button", {class: "btn", onclick: fn}, "Save") builds an element. Props starting with `on`
 * are listeners, `class` sets className, `dataset` fills data-*, a few (value, checked, disabled,
 * ...) are set as properties; everything else is an attribute. Children may be nodes, strings,
 * numbers, arrays or null.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (PROPERTIES.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace an element's children. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

let uid = 0;
/** A unique id for label/aria wiring. */
export function nextId(prefix = "id") {
  uid += 1;
  return `${prefix}-${uid}`;
}
