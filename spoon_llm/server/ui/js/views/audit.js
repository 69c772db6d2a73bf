// The audit log: every admin action, newest first, filterable by actor, action and time, a page at a time.

import { api } from "../api.js";
import { badge, field, h, put, table, text, when } from "../dom.js";

const ACTIONS = ["backend_switched", "backend_endpoint_changed", "budget_changed", "key_created", "key_updated",
  "key_revoked", "config_reloaded"];
const PAGE = 25;

function change(record) {
  if (record.before === null && record.after === null) return "—";
  return h("details", { class: "trace" }, h("summary", {}, "Before / after"),
    h("dl", {}, h("dt", {}, "Before"), h("dd", {}, h("code", {}, text(record.before))),
      h("dt", {}, "After"), h("dd", {}, h("code", {}, text(record.after)))));
}

function isoOrEmpty(input) {
  if (!input.value) return undefined;
  const date = new Date(input.value); // datetime-local: the reader's local time
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

export default {
  title: "Audit log",
  interval: 0,

  mount(root) {
    this.offset = 0;
    this.actor = h("input", { id: "audit-actor", autocomplete: "off", spellcheck: "false" });
    this.action = h("select", { id: "audit-action" }, h("option", { value: "" }, "any action"),
      ACTIONS.map((a) => h("option", { value: a }, a)));
    this.since = h("input", { id: "audit-since", type: "datetime-local" });
    this.until = h("input", { id: "audit-until", type: "datetime-local" });
    this.list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    this.pager = h("nav", { class: "pager", "aria-label": "Audit log pages" });
    const form = h("form", { class: "form-grid", onsubmit: (e) => {
      e.preventDefault();
      this.offset = 0;
      this.refresh();
    } },
    field("Actor", this.actor, "A key alias or JWT subject."), field("Action", this.action),
    field("From", this.since), field("Until", this.until),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Filter")));
    put(root, h("section", { class: "card", "aria-labelledby": "filter-title" },
      h("h2", { id: "filter-title" }, "Filter"), form),
    h("section", { class: "card", "aria-labelledby": "records-title" },
      h("h2", { id: "records-title" }, "Records"), this.list, this.pager));
  },

  async refresh() {
    let page;
    try {
      page = await api("audit", { params: { actor: this.actor.value.trim(), action: this.action.value,
        since: isoOrEmpty(this.since), until: isoOrEmpty(this.until), limit: PAGE, offset: this.offset } });
    } catch (error) {
      if (error.status !== 401) put(this.list, h("p", { class: "notice error" }, "Could not load: " + error.message));
      return;
    }
    const items = page.items || [];
    put(this.list, table([
      { label: "#", render: (r) => String(r.seq ?? ""), class: "num" },
      { label: "Time", render: (r) => when(r.ts ?? r.time) },
      { label: "Actor", render: (r) => r.actor || "—" },
      { label: "From", render: (r) => r.source || "—" },
      { label: "Action", render: (r) => r.action },
      { label: "Target", render: (r) => r.target ?? "—", class: "wrap" },
      { label: "Result", render: (r) => badge(r.result, r.result === "ok" ? "ok" : "critical") },
      { label: "Message", render: (r) => r.message || "—", class: "wrap" },
      { label: "Change", render: change },
    ], items, { caption: "Audit records, newest first", empty: "No records match." }));
    const total = page.total ?? items.length;
    const first = total ? this.offset + 1 : 0;
    const last = this.offset + items.length;
    const previous = h("button", { type: "button", disabled: this.offset === 0, onclick: () => {
      this.offset = Math.max(0, this.offset - PAGE);
      this.refresh();
    } }, "Newer");
    const next = h("button", { type: "button", disabled: last >= total, onclick: () => {
      this.offset += PAGE;
      this.refresh();
    } }, "Older");
    put(this.pager, previous, h("span", { role: "status" }, `${first}–${last} of ${total}`), next);
  },
};
