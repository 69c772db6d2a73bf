// The dashboard shell: sign-in, the hash router (#/overview, #/backends, ...), refresh and notices.

import { ApiError, api, signIn, signOut, signedIn, whenUnauthorized } from "./api.js";
import { h, put } from "./dom.js";
import audit from "./views/audit.js";
import backends from "./views/backends.js";
import calls from "./views/calls.js";
import keys from "./views/keys.js";
import overview from "./views/overview.js";

const VIEWS = { overview, backends, keys, calls, audit };
const $ = (id) => document.getElementById(id);

let current = null; // { name, view, timer }

/** A notice for screen readers and eyes alike (kind: "ok" | "error" | "info"). */
function notify(message, kind = "info") {
  const box = $("notice");
  put(box, message ? h("p", { class: ["notice", kind] }, message) : null);
}

function routeName() {
  const name = location.hash.replace(/^#\/?/, "");
  return Object.hasOwn(VIEWS, name) ? name : "overview";
}

function stop() {
  if (current?.timer) clearTimeout(current.timer);
  current?.view.unmount?.();
  current = null;
}

function schedule(state) {
  if (!state.view.interval) return;
  state.timer = setTimeout(async () => {
    if (current !== state) return;
    if (document.visibilityState === "visible") await state.view.refresh();
    if (current === state) schedule(state);
  }, state.view.interval);
}

async function show(name, { focus = true } = {}) {
  stop();
  const view = VIEWS[name];
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = view.title + " · spoon-llm gateway";
  const heading = h("h1", { tabindex: "-1", id: "view-title" }, view.title);
  const body = h("div", { class: "view-body", "aria-busy": "true" });
  put($("view"), heading, body);
  const state = { name, view, timer: null };
  current = state;
  notify("");
  if (focus) heading.focus();
  view.mount(body, { notify });
  await view.refresh();
  if (current !== state) return;
  body.setAttribute("aria-busy", "false"); // loaded once: what tests and assistive technology wait for
  schedule(state);
}

function showSignIn(message) {
  stop();
  $("nav").hidden = true;
  $("session").hidden = true;
  $("view").hidden = true;
  put($("view"));
  $("sign-in").hidden = false;
  const error = $("sign-in-error");
  put(error, message || "");
  document.title = "Sign in · spoon-llm gateway";
  $("admin-key").value = "";
  $("admin-key").focus();
}

function showApp({ focus = true } = {}) {
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("session").hidden = false;
  $("view").hidden = false;
  show(routeName(), { focus });
}

async function onSignIn(event) {
  event.preventDefault();
  const input = $("admin-key");
  const key = input.value.trim();
  const button = $("sign-in-button");
  if (!key) {
    put($("sign-in-error"), "Enter an admin key.");
    input.focus();
    return;
  }
  button.disabled = true;
  put($("sign-in-error"), "");
  try {
    await api("backend/current", { key });
    signIn(key);
    input.value = "";
    showApp();
  } catch (error) {
    let message = error.message;
    if (error instanceof ApiError && error.status === 403) {
      message = "This key is valid but has no admin role: " + error.message;
    } else if (error instanceof ApiError && error.status === 404) {
      message = "This gateway serves no admin API (" + error.message + ").";
    } else if (error instanceof ApiError && error.status === 401) {
      message = "The gateway refused this key: " + error.message;
    }
    put($("sign-in-error"), message);
    input.focus();
    input.select(); // typing replaces the refused key
  } finally {
    button.disabled = false;
  }
}

function boot() {
  $("sign-in-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", () => {
    signOut();
    sessionStorage.removeItem("spoon-llm.history");
    showSignIn("Signed out.");
  });
  $("refresh").addEventListener("click", async () => {
    if (current) await current.view.refresh();
  });
  window.addEventListener("hashchange", () => {
    if (!signedIn()) return;
    // In-page anchors (the skip link) are not views.
    if (location.hash && !location.hash.startsWith("#/")) return;
    show(routeName());
  });
  whenUnauthorized((error) => {
    signOut();
    showSignIn("The gateway no longer accepts this key (" + error.message + "). Sign in again.");
  });
  if (signedIn()) showApp({ focus: false });
  else showSignIn("");
}

boot();
