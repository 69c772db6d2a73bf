// Overview: spend against the budget (75/90/100% marks), calls, errors, latency, and how they move over time.

import { api } from "../api.js";
import { budgetGauge, budgetLevel, seriesChart } from "../charts.js";
import { badge, field, h, ms, num, pct, put, table, usd, when } from "../dom.js";

// The gateway's counters are totals since start; the dashboard samples them on every refresh to draw them over
// time, keeping the last hour of samples in this tab.
const HISTORY = "spoon-llm.history";
const MAX_SAMPLES = 720;
const COLLECTING = "Collecting samples: the chart starts with the next refresh (every 5 s).";
const SUMMARY = new Set(["total", "budget_limit", "remaining", "budget_used_percent"]);

function history() {
  try {
    const list = JSON.parse(sessionStorage.getItem(HISTORY) || "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function remember(sample) {
  const list = history();
  list.push(sample);
  sessionStorage.setItem(HISTORY, JSON.stringify(list.slice(-MAX_SAMPLES)));
  return list.slice(-MAX_SAMPLES);
}

/** Requests per minute between samples; a counter that went down (a restarted worker) starts a new run. */
function rates(samples) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = samples[i].t - samples[i - 1].t;
    const dc = samples[i].calls - samples[i - 1].calls;
    if (dt > 0 && dc >= 0) out.push({ t: samples[i].t, v: (dc / dt) * 60 });
  }
  return out;
}

function stat(label, value, detail, testid) {
  return h("div", { class: "stat" }, h("h3", {}, label),
    h("p", { class: "stat-value", "data-testid": testid }, value), detail ? h("p", { class: "stat-detail" }, detail) : null);
}

const LEVEL_TEXT = { ok: "within budget", warning: "warning: 75% used", critical: "critical: 90% used",
  blocked: "blocked: budget spent, calls refused" };

function budgetSection(costs, budget) {
  const limit = costs.budget_limit;
  const spent = Number(costs.total) || 0;
  const parts = [h("h2", { id: "spend-title" }, "Spend"),
    h("p", { class: "big" }, h("span", { "data-testid": "spend-total" }, usd(spent)),
      h("span", { class: "of" }, " in total"))];
  if (limit === null || limit === undefined) {
    parts.push(h("p", { class: "muted", "data-testid": "budget-used" }, "No budget set."));
  } else {
    // The budget counts what was spent in its period since it was set, which can differ from the total above.
    const percent = Number(budget?.budget_used_percent ?? costs.budget_used_percent) || 0;
    const level = budget?.level || budgetLevel(percent);
    const period = budget?.period && budget.period !== "total" ? budget.period + " " : "";
    parts.push(
      h("p", { "data-testid": "budget-used" }, badge(LEVEL_TEXT[level] || level, level), " ",
        `${pct(percent)} of the ${usd(limit)} ${period}budget used (${usd(budget?.spent ?? spent)} spent, ` +
        `${usd(costs.remaining)} left)`),
      budgetGauge(percent),
      h("p", { class: "legend" }, "Marks: 75% warning · 90% critical · 100% calls blocked."),
    );
  }
  const alerts = (budget?.alerts || []).slice(-5).reverse();
  if (alerts.length) {
    parts.push(h("h3", {}, "Recent budget alerts"), h("ul", { class: "alerts" }, alerts.map((a) =>
      h("li", {}, badge(a.level, a.level), " ", a.budget + ": " + usd(a.spent) + " of " + usd(a.limit) + " ",
        when(a.time)))));
  }
  return parts;
}

function backendRows(costs, metrics) {
  const names = new Set(Object.keys(metrics.by_backend || {}));
  for (const [name, value] of Object.entries(costs)) {
    if (!SUMMARY.has(name) && typeof value === "number" && value > 0) names.add(name);
  }
  return [...names].sort().map((name) => ({ name, spend: costs[name], ...(metrics.by_backend?.[name] || {}) }));
}

const GROUP_COLUMNS = [
  { label: "Calls", render: (r) => num(r.calls ?? 0), class: "num" },
  { label: "Errors", render: (r) => num(r.errors ?? 0), class: "num" },
  { label: "Tokens", render: (r) => num(r.total_tokens ?? 0), class: "num" },
  { label: "Avg latency", render: (r) => ms(r.avg_latency_ms), class: "num" },
];

export default {
  title: "Overview",
  interval: 5000,

  mount(root, ctx) {
    this.ctx = ctx;
    this.summary = h("section", { class: "card span-2", "aria-labelledby": "spend-title" },
      h("h2", { id: "spend-title" }, "Spend"), h("p", { class: "muted" }, "Loading…"));
    this.stats = h("div", { class: "stats" });
    this.charts = h("div", { class: "charts" });
    this.tables = h("div", { class: "grid" });
    this.error = h("div", { role: "alert" });
    const input = h("input", { id: "budget-limit", type: "number", min: "0", step: "any", inputmode: "decimal",
      required: true });
    const result = h("p", { class: "form-result", role: "status" });
    const form = h("form", { class: "inline-form", novalidate: true, onsubmit: (e) => this.setBudget(e, input, result) },
      field("Budget limit (USD)", input, "The global budget; calls are refused once it is spent."),
      h("button", { type: "submit" }, "Set budget"), result);
    put(root, this.error,
      h("div", { class: "grid" }, this.summary,
        h("section", { class: "card", "aria-labelledby": "budget-form-title" },
          h("h2", { id: "budget-form-title" }, "Change the budget"), form)),
      h("section", { "aria-labelledby": "traffic-title" }, h("h2", { id: "traffic-title" }, "Traffic"), this.stats),
      h("section", { "aria-labelledby": "trend-title" }, h("h2", { id: "trend-title" }, "Over time"),
        h("p", { class: "muted" }, "Sampled every 5 s while this page is open (the last hour, in this tab)."),
        this.charts),
      this.tables);
  },

  async setBudget(event, input, result) {
    event.preventDefault();
    const value = Number(input.value);
    if (input.value === "" || !Number.isFinite(value) || value < 0) {
      put(result, "Enter a budget in US dollars (0 or more).");
      result.className = "form-result error";
      input.focus();
      return;
    }
    try {
      const answer = await api("budget", { method: "POST", body: { budget_limit: value } });
      put(result, answer.message || "Budget set.");
      result.className = "form-result ok";
      await this.refresh();
    } catch (error) {
      put(result, error.message);
      result.className = "form-result error";
    }
  },

  async refresh() {
    let costs;
    let metrics;
    let budget;
    try {
      [costs, metrics, budget] = await Promise.all([api("costs"), api("metrics", { params: { recent: 0 } }),
        api("budget")]);
    } catch (error) {
      if (error.status !== 401) put(this.error, h("p", { class: "notice error" }, "Could not load: " + error.message));
      return;
    }
    put(this.error);
    const o = metrics.overview || {};
    const samples = remember({ t: Date.now() / 1000, spend: Number(costs.total) || 0, calls: o.total_calls || 0 });
    put(this.summary, budgetSection(costs, budget));
    const latency = o.latency_ms || {};
    put(this.stats,
      stat("Calls", num(o.total_calls ?? 0), `${num(o.successful_calls ?? 0)} succeeded, ${num(o.failed_calls ?? 0)} failed`,
        "calls-total"),
      stat("Error rate", pct((o.error_rate || 0) * 100), null, "error-rate"),
      stat("Latency p50", ms(latency.p50), `p95 ${ms(latency.p95)} · p99 ${ms(latency.p99)}`, "latency-p50"),
      stat("Tokens", num(o.total_tokens ?? 0), `${num(o.input_tokens ?? 0)} in, ${num(o.output_tokens ?? 0)} out`,
        "tokens-total"));
    put(this.charts,
      seriesChart(samples.map((p) => ({ t: p.t, v: p.spend })), { title: "Spend (USD, total)", format: usd,
        empty: COLLECTING }),
      seriesChart(rates(samples), { title: "Requests per minute", format: (v) => v.toFixed(1), kind: "bars",
        empty: COLLECTING }));
    put(this.tables,
      h("section", { class: "card", "aria-labelledby": "by-backend-title" },
        h("h2", { id: "by-backend-title" }, "By backend"),
        table([{ label: "Backend", render: (r) => r.name },
          { label: "Spend", render: (r) => usd(r.spend ?? r.cost_usd ?? 0), class: "num" }, ...GROUP_COLUMNS],
        backendRows(costs, metrics), { caption: "Spend and calls by backend", empty: "No calls yet." })),
      h("section", { class: "card", "aria-labelledby": "by-model-title" },
        h("h2", { id: "by-model-title" }, "By model"),
        table([{ label: "Model", render: (r) => r.name },
          { label: "Spend", render: (r) => usd(r.cost_usd ?? 0), class: "num" }, ...GROUP_COLUMNS],
        Object.entries(metrics.by_model || {}).map(([name, g]) => ({ name, ...g })),
        { caption: "Calls by model", empty: "No calls yet." })));
  },
};
