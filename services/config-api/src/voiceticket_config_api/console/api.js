// The admin API client: the token in sessionStorage, sent as a bearer token to config-api alone.

const KEY = "voiceticket.admin-token";

export function storedToken() {
  return sessionStorage.getItem(KEY);
}

export function keepToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `request failed (${status})`);
    this.status = status;
    this.detail = detail;
  }

  // FastAPI answers "Not Found" for a route it does not have (an API this config-api lacks).
  get missingRoute() {
    return this.status === 404 && this.detail === "Not Found";
  }

  get validation() {
    return this.status === 422 && Array.isArray(this.detail) ? this.detail : null;
  }
}

const listeners = [];

// Called with the error when a request is refused for its token (revoked, or no longer known).
export function onUnauthorized(listener) {
  listeners.push(listener);
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "config-api could not be reached");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const detail = data && typeof data === "object" && "detail" in data ? data.detail : data;
    const error = new ApiError(response.status, detail || response.statusText);
    if (response.status === 401) listeners.forEach((listener) => listener(error));
    throw error;
  }
  return { status: response.status, data };
}

export function path(template, ...values) {
  return template.replace(/\{\}/g, () => encodeURIComponent(values.shift()));
}
