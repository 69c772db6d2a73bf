// Virtual keys: create one (its plain key is shown once, here, and never again), revoke, spend and limits.

import { api } from "../api.js";
import { badge, field, h, keyPrefix, num, pct, put, table, usd, when } from "../dom.js";

const STATUS_KIND = { active: "ok", revoked: "critical", expired: "warning" };

function optionalNumber(input, name, integer) {
  const raw = input.value.trim();
  if (!raw) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new Error(name + " must be " + (integer ? "a whole number" : "a number") + " of 0 or more.");
  }
  return value;
}

function limits(k) {
  const parts = [];
  if (k.rpm) parts.push(num(k.rpm) + " req/min");
  if (k.tpm) parts.push(num(k.tpm) + " tokens/min");
  if (k.max_concurrent) parts.push(num(k.max_concurrent) + " at once");
  return parts.length ? parts.join(", ") : "none";
}

function spend(k) {
  return k.usage ? usd(k.usage.cost_usd ?? 0) : "—";
}

/** The key's budget as the guard keeps it (the shared ledger), with the period it resets on. */
function budget(k) {
  const b = k.usage?.budget;
  if (b && b.limit !== undefined && b.limit !== null) {
    return [usd(b.spent), " of ", usd(b.limit), " (", pct(b.percent), ", ", b.period, ")"];
  }
  return k.budget_limit !== null && k.budget_limit !== undefined ? usd(k.budget_limit) + " (" + k.budget_period + ")"
    : "none";
}

export default {
  title: "Keys",
  interval: 0,

  mount(root, ctx) {
    this.ctx = ctx;
    this.list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    this.created = h("div", { "aria-live": "polite" });
    this.status = h("p", { role: "status", class: "form-result" });
    const input = (id, attrs = {}) => h("input", { id, ...attrs });
    this.fields = {
      alias: input("key-alias", { required: true, maxlength: "64", autocomplete: "off", spellcheck: "false",
        pattern: "[A-Za-z0-9][A-Za-z0-9._@-]{0,63}" }),
      role: h("select", { id: "key-role" }, h("option", { value: "user" }, "user"),
        h("option", { value: "admin" }, "admin")),
      models: input("key-models", { autocomplete: "off", spellcheck: "false", placeholder: "gpt-4o-mini, claude-*" }),
      budget: input("key-budget", { type: "number", min: "0", step: "any", inputmode: "decimal" }),
      period: h("select", { id: "key-period" }, ["total", "daily", "monthly"].map((p) => h("option", { value: p }, p))),
      rpm: input("key-rpm", { type: "number", min: "1", step: "1", inputmode: "numeric" }),
      tpm: input("key-tpm", { type: "number", min: "1", step: "1", inputmode: "numeric" }),
      concurrent: input("key-concurrent", { type: "number", min: "1", step: "1", inputmode: "numeric" }),
      expires: input("key-expires", { autocomplete: "off", placeholder: "30d, 12h or 2027-01-31" }),
    };
    const f = this.fields;
    this.formResult = h("p", { class: "form-result", role: "status" });
    const form = h("form", { class: "form-grid", novalidate: true, onsubmit: (e) => this.create(e) },
      field("Alias", f.alias, "Letters, digits, '.', '_', '@' or '-'."),
      field("Role", f.role),
      field("Models", f.models, "Comma-separated; empty for every model."),
      field("Budget (USD)", f.budget, "Empty for no budget."),
      field("Budget period", f.period),
      field("Requests per minute", f.rpm),
      field("Tokens per minute", f.tpm),
      field("Concurrent requests", f.concurrent),
      field("Expires", f.expires, "A duration from now or a date; empty for never."),
      h("div", { class: "form-actions" }, h("button", { type: "submit", class: "primary" }, "Create key"),
        this.formResult));
    put(root, this.created,
      h("section", { class: "card", "aria-labelledby": "create-title" },
        h("h2", { id: "create-title" }, "Create a key"), form),
      h("section", { class: "card", "aria-labelledby": "keys-title" },
        h("h2", { id: "keys-title" }, "Keys"),
        h("p", { class: "muted" }, "Spend and calls count what this gateway process served with each key since " +
          "it started; Budget is the key's budget as every replica shares it."),
        this.status, this.list));
  },

  body() {
    const f = this.fields;
    const alias = f.alias.value.trim();
    if (!alias) throw new Error("Give the key an alias.");
    const body = { alias, role: f.role.value };
    const models = f.models.value.split(",").map((m) => m.trim()).filter(Boolean);
    if (models.length) body.models = models;
    const budget = optionalNumber(f.budget, "Budget", false);
    if (budget !== undefined) {
      body.budget_limit = budget;
      body.budget_period = f.period.value;
    }
    for (const [name, input, label] of [["rpm", f.rpm, "Requests per minute"], ["tpm", f.tpm, "Tokens per minute"],
      ["max_concurrent", f.concurrent, "Concurrent requests"]]) {
      const value = optionalNumber(input, label, true);
      if (value !== undefined) body[name] = value;
    }
    if (f.expires.value.trim()) body.expires = f.expires.value.trim();
    return body;
  },

  async create(event) {
    event.preventDefault();
    const box = this.formResult;
    let body;
    try {
      body = this.body();
    } catch (error) {
      put(box, error.message);
      box.className = "form-result error";
      return;
    }
    try {
      const answer = await api("keys", { method: "POST", body });
      event.target.reset();
      put(box, "");
      this.showOnce(answer);
      await this.refresh();
    } catch (error) {
      put(box, error.message);
      box.className = "form-result error";
    }
  },

  /** The new key, in full, this one time; dismissing it removes it from the page. */
  showOnce(answer) {
    const code = h("code", { class: "secret", "data-testid": "new-key" }, answer.key);
    const copyResult = h("span", { role: "status" });
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(answer.key);
        put(copyResult, "Copied.");
      } catch {
        const range = document.createRange();
        range.selectNodeContents(code);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        put(copyResult, "Selected: press Ctrl+C (or ⌘C) to copy.");
      }
    };
    const done = h("button", { type: "button", onclick: () => {
      put(this.created);
      const heading = document.getElementById("keys-title");
      heading?.setAttribute("tabindex", "-1");
      heading?.focus(); // the button is gone; keep the keyboard where the new key now appears
    } }, "I have stored it");
    put(this.created, h("section", { class: "card once", "aria-labelledby": "once-title" },
      h("h2", { id: "once-title" }, "New key for " + answer.alias),
      h("p", {}, h("strong", {}, "This is the only time the key is shown."), " Store it now; the gateway keeps " +
        "only its hash."),
      h("p", { class: "secret-row" }, code),
      h("p", {}, h("button", { type: "button", class: "primary", onclick: copy }, "Copy key"), " ", done, " ",
        copyResult)));
    done.focus();
  },

  confirmRevoke(cell, k) {
    const cancel = h("button", { type: "button", onclick: () => put(cell, this.revokeButton(cell, k)) }, "Cancel");
    const confirm = h("button", { type: "button", class: "danger", onclick: () => this.revoke(k) },
      "Confirm revoke " + k.alias);
    put(cell, h("span", { class: "confirm" }, "Revoke " + k.alias + "? Clients using it are refused within a " +
      "second.", " ", confirm, " ", cancel));
    confirm.focus();
  },

  revokeButton(cell, k) {
    return h("button", { type: "button", class: "danger", "aria-label": "Revoke " + k.alias,
      onclick: () => this.confirmRevoke(cell, k) }, "Revoke");
  },

  async revoke(k) {
    try {
      await api("keys/" + encodeURIComponent(k.alias), { method: "DELETE" });
      put(this.status, "Revoked " + k.alias + ".");
      this.status.className = "form-result ok";
    } catch (error) {
      put(this.status, "Could not revoke " + k.alias + ": " + error.message);
      this.status.className = "form-result error";
    }
    await this.refresh();
    document.getElementById("keys-title")?.setAttribute("tabindex", "-1");
    document.getElementById("keys-title")?.focus();
  },

  async refresh() {
    let keys;
    try {
      const answer = await api("keys");
      keys = Array.isArray(answer) ? answer : answer.keys || [];
    } catch (error) {
      if (error.status !== 401) put(this.list, h("p", { class: "notice error" }, "Could not load: " + error.message));
      return;
    }
    // Each key's usage is its own call; the first hundred keys are enough for a page.
    const shown = keys.slice(0, 100);
    await Promise.all(shown.map(async (k) => {
      try {
        k.usage = await api("keys/" + encodeURIComponent(k.alias) + "/usage");
      } catch {
        k.usage = null;
      }
    }));
    put(this.list, table([
      { label: "Alias", render: (k) => k.alias },
      { label: "Key", render: (k) => h("code", {}, keyPrefix(k.key_prefix)) },
      { label: "Role", render: (k) => k.role },
      { label: "Status", render: (k) => badge(k.status, STATUS_KIND[k.status] || "info") },
      { label: "Spend", render: spend, class: "num" },
      { label: "Budget", render: budget },
      { label: "Calls", render: (k) => num(k.usage?.calls ?? 0), class: "num" },
      { label: "Limits", render: limits },
      { label: "Models", render: (k) => (k.models ? k.models.join(", ") : "all") },
      { label: "Expires", render: (k) => (k.expires_at ? when(k.expires_at) : "never") },
      { label: "Created", render: (k) => when(k.created_at) },
      { label: "Actions", render: (k) => {
        if (k.status !== "active") return "—";
        const cell = h("span", {});
        put(cell, this.revokeButton(cell, k));
        return cell;
      } },
    ], shown.map((k) => ({ ...k, __class: "key-" + k.status })),
    { caption: "Virtual keys", empty: "No keys yet: create one above." }),
    keys.length > shown.length ? h("p", { class: "muted" }, `Showing 100 of ${keys.length} keys.`) : null);
  },
};
