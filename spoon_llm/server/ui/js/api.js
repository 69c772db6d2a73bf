// The admin API client: the admin key lives in sessionStorage (gone when the tab closes) and goes out as Bearer.

const STORE = "spoon-llm.admin-key";
// Relative to the page (/ui/), so the dashboard also works behind a proxy that mounts the gateway under a prefix.
const BASE = new URL("../api/admin/", document.baseURI);

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code || null;
  }
}

export function signedIn() {
  return Boolean(sessionStorage.getItem(STORE));
}

export function signIn(key) {
  sessionStorage.setItem(STORE, key);
}

export function signOut() {
  sessionStorage.removeItem(STORE);
}

let onUnauthorized = () => {};

/** Called when the API refuses the stored key (401): the key is dropped and the page asks again. */
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

function query(params) {
  const out = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") out.set(name, String(value));
  }
  const text = out.toString();
  return text ? "?" + text : "";
}

/** One admin API call; answers the parsed JSON or throws ApiError with the API's own message. */
export async function api(path, { method = "GET", body, params, key } = {}) {
  const token = key || sessionStorage.getItem(STORE);
  if (!token) throw new ApiError(401, "Sign in with an admin key first.", "missing_api_key");
  const headers = { authorization: "Bearer " + token, accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  const url = new URL(path.replace(/^\//, "") + query(params), BASE);
  let response;
  try {
    response = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit", redirect: "error",
    });
  } catch (error) {
    throw new ApiError(0, "The gateway cannot be reached (" + error.message + ").", "network_error");
  }
  const raw = await response.text();
  let data = null;
  if (raw) {
    try {
      data = JSON.parse(raw);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const detail = data && (data.error?.message || (typeof data.detail === "string" ? data.detail : null));
    const error = new ApiError(response.status, detail || "HTTP " + response.status + " from " + url.pathname,
      data?.error?.code);
    if (response.status === 401 && !key) onUnauthorized(error);
    throw error;
  }
  return data;
}
