// Recent calls: the gateway's bounded, redacted list (no prompts, answers or keys), each with its attempt trace.

import { api } from "../api.js";
import { badge, h, ms, num, put, table, usd, when } from "../dom.js";

function attempts(call) {
  const list = Array.isArray(call.attempts) ? call.attempts
    : String(call.attempts || "").split(",").filter(Boolean).map((part) => {
      const at = part.lastIndexOf(":");
      return { deployment: part.slice(0, at), result: part.slice(at + 1) };
    });
  if (!list.length) return "—";
  const failed = list.filter((a) => a.result !== "ok").length;
  const summary = list.length === 1 ? "1 attempt" : `${list.length} attempts` + (failed ? `, ${failed} failed` : "");
  return h("details", { class: "trace" }, h("summary", {}, summary),
    h("ol", {}, list.map((a) => h("li", {}, a.deployment + ": ",
      badge(a.result === "ok" ? "ok" : String(a.result), a.result === "ok" ? "ok" : "critical")))));
}

export default {
  title: "Recent calls",
  interval: 0,

  mount(root) {
    this.list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    put(root, h("p", { class: "muted" }, "The last calls this gateway process served, newest first. Prompts, " +
      "answers and keys are never kept; callers appear by key alias."), this.list);
  },

  async refresh() {
    let metrics;
    try {
      metrics = await api("metrics", { params: { recent: 200 } });
    } catch (error) {
      if (error.status !== 401) put(this.list, h("p", { class: "notice error" }, "Could not load: " + error.message));
      return;
    }
    const calls = metrics.recent_calls || [];
    put(this.list, table([
      { label: "Time", render: (c) => when(c.time) },
      { label: "Route", render: (c) => c.route },
      { label: "Model", render: (c) => c.model || "—" },
      { label: "Backend", render: (c) => c.backend || "—" },
      { label: "Status", render: (c) => badge(String(c.status), c.status >= 400 ? "critical" : "ok") },
      { label: "Latency", render: (c) => ms(c.latency_ms), class: "num" },
      { label: "Tokens in/out", render: (c) => `${num(c.input_tokens)} / ${num(c.output_tokens)}`, class: "num" },
      { label: "Cost", render: (c) => usd(c.cost_usd), class: "num" },
      { label: "Key", render: (c) => c.key_alias || "—" },
      { label: "Attempts", render: attempts },
    ], calls, { caption: "Recent calls", empty: "No calls yet." }));
  },
};
