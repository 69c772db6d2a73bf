// Hand-drawn SVG charts. Shapes only live in the SVG (scaled to the box); labels are HTML so they stay readable.

import { h, s } from "./dom.js";

/** Alert thresholds of the budget, as the gateway raises them. */
export const MARKS = [
  { at: 75, label: "75% warning", level: "warning" },
  { at: 90, label: "90% critical", level: "critical" },
  { at: 100, label: "100% blocked", level: "blocked" },
];

export function budgetLevel(percent) {
  if (percent >= 100) return "blocked";
  if (percent >= 90) return "critical";
  if (percent >= 75) return "warning";
  return "ok";
}

/** Spend against the budget: a bar with the 75/90/100% marks; the scale stretches when spend is over. */
export function budgetGauge(percent) {
  const used = Math.max(0, Number(percent) || 0);
  // Past 100% a little, so the 100% mark and its label stand clear of the end; further when spend is over.
  const scale = Math.max(110, used * 1.05);
  const x = (p) => (p / scale) * 1000;
  const level = budgetLevel(used);
  const svg = s("svg", { viewBox: "0 0 1000 40", preserveAspectRatio: "none", class: "gauge-svg",
    "aria-hidden": "true", focusable: "false" },
  s("rect", { class: "gauge-track", x: 0, y: 8, width: 1000, height: 24, rx: 4 }),
  s("rect", { class: ["gauge-fill", level], x: 0, y: 8, width: x(Math.min(used, scale)), height: 24, rx: 4 }),
  MARKS.map((m) => s("line", { class: ["gauge-mark", m.level], x1: x(m.at), x2: x(m.at), y1: 0, y2: 40,
    "vector-effect": "non-scaling-stroke" })));
  const labels = h("div", { class: "gauge-labels", "aria-hidden": "true" },
    MARKS.map((m) => {
      const label = h("span", { class: ["gauge-label", m.level] }, m.at + "%");
      // Set through the CSSOM, which the page's CSP allows (inline style attributes it does not).
      label.style.left = (m.at / scale) * 100 + "%";
      return label;
    }));
  return h("div", { class: "gauge", role: "img",
    "aria-label": `Budget used: ${used.toFixed(1)}% (marks at 75% warning, 90% critical, 100% blocked)` },
  svg, labels);
}

function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * A time series: points [{t: seconds, v: number}], drawn as a line with its area (kind "line") or as bars.
 * `format` renders values for the labels and the accessible summary.
 */
export function seriesChart(points, { title, format, kind = "line", empty = "No samples yet." }) {
  const box = h("figure", { class: "chart" }, h("figcaption", {}, title));
  if (points.length < (kind === "line" ? 2 : 1)) {
    box.appendChild(h("p", { class: "empty" }, empty));
    return box;
  }
  const W = 600;
  const H = 160;
  const [t0, t1] = extent(points.map((p) => p.t));
  const [, vmax] = extent(points.map((p) => p.v));
  const top = vmax > 0 ? vmax : 1;
  const span = t1 > t0 ? t1 - t0 : 1;
  const x = (t) => ((t - t0) / span) * W;
  const y = (v) => H - (v / top) * (H - 8);
  let shape;
  if (kind === "bars") {
    const width = Math.max(2, (W / points.length) * 0.7);
    shape = points.map((p) => s("rect", { class: "bar", x: Math.min(W - width, Math.max(0, x(p.t) - width / 2)),
      y: y(p.v), width, height: H - y(p.v) }));
  } else {
    const line = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
    shape = [
      s("polygon", { class: "area", points: `0,${H} ${line} ${W},${H}` }),
      s("polyline", { class: "line", points: line, "vector-effect": "non-scaling-stroke" }),
    ];
  }
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", class: "chart-svg",
    "aria-hidden": "true", focusable: "false" },
  [0.25, 0.5, 0.75].map((f) => s("line", { class: "grid", x1: 0, x2: W, y1: H * f, y2: H * f,
    "vector-effect": "non-scaling-stroke" })), shape);
  const last = points[points.length - 1];
  const start = new Date(t0 * 1000).toLocaleTimeString();
  const end = new Date(t1 * 1000).toLocaleTimeString();
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", `${title}: ${points.length} points from ${start} to ${end}, ` +
    `latest ${format(last.v)}, highest ${format(vmax)}`);
  box.append(
    h("div", { class: "chart-body" }, h("span", { class: "chart-max", "aria-hidden": "true" }, format(vmax)), svg),
    h("div", { class: "chart-axis", "aria-hidden": "true" }, h("span", {}, start), h("span", {}, end)),
  );
  return box;
}
