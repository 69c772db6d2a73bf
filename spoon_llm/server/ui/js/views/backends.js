// Backends: the current default, every backend's health (checked without spending tokens), switching the default,
// and pointing a backend at a new endpoint.

import { api } from "../api.js";
import { badge, field, h, ms, put, table, when } from "../dom.js";

function yesNo(value, yes, no) {
  if (value === true) return badge(yes, "ok");
  if (value === false) return badge(no, "critical");
  return "unknown";
}

function options(select, names, chosen) {
  const keep = select.value || chosen;
  put(select, names.map((name) => h("option", { value: name, selected: name === keep }, name)));
}

function result(box, answer) {
  const ok = answer.success !== false;
  put(box, badge(ok ? "Done" : "Refused", ok ? "ok" : "critical"), " ", answer.message || "");
  box.className = "form-result " + (ok ? "ok" : "error");
}

function failure(box, error) {
  put(box, badge("Error", "critical"), " ", error.message);
  box.className = "form-result error";
}

export default {
  title: "Backends",
  interval: 0,

  mount(root, ctx) {
    this.ctx = ctx;
    this.names = [];
    this.current = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    this.health = h("div", {}, h("p", { class: "muted" }, "Checking…"));
    this.error = h("div", { role: "alert" });

    this.switchSelect = h("select", { id: "switch-backend", required: true });
    const skip = h("input", { id: "switch-skip", type: "checkbox" });
    const switchResult = h("p", { class: "form-result", role: "status", "data-testid": "switch-result" });
    const switchForm = h("form", { class: "stack", onsubmit: (e) => this.switch(e, skip, switchResult) },
      field("Backend", this.switchSelect),
      h("div", { class: "check" }, skip, h("label", { for: "switch-skip" },
        "Skip the health check (force the switch and put the backend back into rotation)")),
      h("button", { type: "submit", class: "primary" }, "Switch backend"), switchResult);

    this.endpointSelect = h("select", { id: "endpoint-backend", required: true });
    const url = h("input", { id: "endpoint-url", type: "url", required: true, placeholder: "http://host:8000/v1",
      autocomplete: "off", spellcheck: "false" });
    const check = h("input", { id: "endpoint-check", type: "checkbox" });
    const endpointResult = h("p", { class: "form-result", role: "status", "data-testid": "endpoint-result" });
    const endpointForm = h("form", { class: "stack", novalidate: true,
      onsubmit: (e) => this.endpoint(e, url, check, endpointResult) },
    field("Backend", this.endpointSelect),
    field("New endpoint", url, "http:// or https://, a host and an optional port and path. New requests use it; " +
        "requests in flight finish where they started."),
    h("div", { class: "check" }, check, h("label", { for: "endpoint-check" },
      "Apply only if the new endpoint passes a health check")),
    h("button", { type: "submit" }, "Change endpoint"), endpointResult);

    put(root, this.error,
      h("div", { class: "grid" },
        h("section", { class: "card", "aria-labelledby": "current-title" },
          h("h2", { id: "current-title" }, "Current default"), this.current),
        h("section", { class: "card", "aria-labelledby": "switch-title" },
          h("h2", { id: "switch-title" }, "Switch the default backend"), switchForm)),
      h("section", { class: "card", "aria-labelledby": "health-title" },
        h("div", { class: "card-head" }, h("h2", { id: "health-title" }, "Health"),
          h("button", { type: "button", onclick: () => this.checkHealth() }, "Check again")),
        h("p", { class: "muted" }, "Reachability, key validity and response time, checked without spending tokens."),
        this.health),
      h("section", { class: "card", "aria-labelledby": "endpoint-title" },
        h("h2", { id: "endpoint-title" }, "Point a backend at a new endpoint"), endpointForm));
  },

  async switch(event, skip, box) {
    event.preventDefault();
    const backend = this.switchSelect.value;
    put(box, "Switching to " + backend + "…");
    box.className = "form-result";
    try {
      result(box, await api("backend/switch", { method: "POST",
        body: { backend, skip_health_check: skip.checked } }));
      await this.loadCurrent();
    } catch (error) {
      failure(box, error);
    }
  },

  async endpoint(event, url, check, box) {
    event.preventDefault();
    const name = this.endpointSelect.value;
    if (!url.value.trim()) {
      put(box, "Enter the new endpoint URL.");
      box.className = "form-result error";
      url.focus();
      return;
    }
    let scheme = "";
    try {
      scheme = new URL(url.value.trim()).protocol;
    } catch {
      scheme = "";
    }
    if (scheme !== "http:" && scheme !== "https:") {
      // The gateway checks too; this saves a round trip for the common slip.
      put(box, badge("Error", "critical"), " The endpoint must be a URL that starts with http:// or https://.");
      box.className = "form-result error";
      url.focus();
      return;
    }
    put(box, "Applying…");
    box.className = "form-result";
    try {
      result(box, await api("backend/" + encodeURIComponent(name) + "/endpoint", { method: "POST",
        body: { endpoint: url.value.trim(), health_check: check.checked } }));
    } catch (error) {
      failure(box, error);
    }
  },

  async loadCurrent() {
    const current = await api("backend/current");
    this.currentName = current.backend;
    put(this.current,
      h("p", { class: "big", "data-testid": "current-backend" }, current.backend || "none"),
      h("p", {}, badge(current.healthy ? "healthy" : "unhealthy", current.healthy ? "ok" : "critical"),
        " since ", when(current.since_ts ?? current.since)),
      current.models?.length ? h("p", {}, "Models: ", current.models.join(", ")) : null);
    if (!this.names.length && current.backend) {
      this.names = [current.backend];
      options(this.switchSelect, this.names, current.backend);
      options(this.endpointSelect, this.names, current.backend);
    }
  },

  async checkHealth() {
    put(this.health, h("p", { class: "muted" }, "Checking every backend…"));
    let all;
    try {
      all = await api("backend/health");
    } catch (error) {
      if (error.status !== 401) put(this.health, h("p", { class: "notice error" }, "Could not check: " + error.message));
      return;
    }
    const rows = Object.entries(all).map(([name, r]) => ({ name, ...r }));
    this.names = rows.map((r) => r.name);
    options(this.switchSelect, this.names, this.currentName);
    options(this.endpointSelect, this.names, this.currentName);
    put(this.health, table([
      { label: "Backend", render: (r) => r.name === this.currentName ? [r.name, " ", badge("default", "info")] : r.name },
      { label: "Status", render: (r) => yesNo(r.healthy, "healthy", "unhealthy") },
      { label: "Reachable", render: (r) => yesNo(r.reachable, "yes", "no") },
      { label: "Key", render: (r) => yesNo(r.auth_valid, "valid", "refused") },
      { label: "Response", render: (r) => ms(r.response_time_ms), class: "num" },
      { label: "Problem", render: (r) => r.error || "—", class: "wrap" },
    ], rows, { caption: "Health of every backend", empty: "No backends configured." }));
  },

  async refresh() {
    try {
      await this.loadCurrent();
      put(this.error);
    } catch (error) {
      if (error.status !== 401) put(this.error, h("p", { class: "notice error" }, "Could not load: " + error.message));
      return;
    }
    await this.checkHealth();
  },
};
