// Building the page without HTML strings: every piece of data becomes a text node, never markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value" || name === "checked" || name === "selected") {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** An HTML element: h("button", {type: "button", onclick: fn}, "Text"). Strings become text, never markup. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, built like h(). */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replace an element's children. */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table that turns into labelled cards on narrow screens (each cell carries its column's name). */
export function table(columns, rows, { caption, empty = "Nothing yet." } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)));
  const body = rows.map((row) => h("tr", { class: row.__class },
    columns.map((c) => h("td", { "data-label": c.label, class: c.class }, h("span", {}, c.render(row))))));
  return h("div", { class: "table-wrap" },
    h("table", { class: "data" }, caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, head), h("tbody", {}, body)));
}

/** A labelled form field; `control` is an input, select or textarea with an id. */
export function field(label, control, hint) {
  const hintId = hint ? control.id + "-hint" : null;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control,
    hint ? h("small", { id: hintId, class: "hint" }, hint) : null);
}

/** A status line: text with a word for the state, never colour alone. */
export function badge(text, kind) {
  return h("span", { class: ["badge", kind] }, text);
}

const money = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD" });

/** US dollars; amounts under a cent keep two significant digits so small spend is still visible. */
export function usd(value) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  const v = Number(value);
  if (v !== 0 && Math.abs(v) < 0.01) {
    const digits = Math.min(8, 1 - Math.floor(Math.log10(Math.abs(v))));
    return (v < 0 ? "-$" : "$") + Math.abs(v).toFixed(digits);
  }
  return money.format(v);
}

export function num(value) {
  if (value === null || value === undefined) return "—";
  return Number(value).toLocaleString();
}

export function pct(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  return Number(value).toFixed(digits) + "%";
}

export function ms(value) {
  if (value === null || value === undefined) return "—";
  const v = Number(value);
  return v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(v < 10 ? 1 : 0) + " ms";
}

/** A moment (ISO text or Unix seconds) as a <time> element in the reader's locale. */
export function when(value) {
  if (value === null || value === undefined || value === "") return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return h("time", { datetime: date.toISOString(), title: date.toISOString() }, date.toLocaleString());
}

/** A value of unknown shape as short text (before/after of audit records, limits). */
export function text(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** A key as it may be shown in lists: its first characters only, whatever the API sent. */
export function keyPrefix(value) {
  const shown = String(value || "").replace(/…$/, "");
  return (shown.length > 12 ? shown.slice(0, 12) : shown) + "…";
}
