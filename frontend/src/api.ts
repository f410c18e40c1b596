// Requests to the runtable server. Every request carries the access token.
//
// The token arrives once, in the URL the server prints (`/?token=…`). We keep it in
// memory, send it as a bearer token and remove it from the address bar, so it does not
// end up in bookmarks, screenshots or the browser history. The server also sets a
// cookie, which keeps a reloaded page working without the token in the URL.

const TOKEN_PARAM = "token";

let token: string | null = null;

/** Take the token from the page URL (once, at start-up) and strip it from the address bar. */
export function initToken(): void {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get(TOKEN_PARAM);
  if (fromUrl === null) {
    return;
  }
  token = fromUrl;
  url.searchParams.delete(TOKEN_PARAM);
  window.history.replaceState(window.history.state, "", url);
}

/** An HTTP error answer from the server. */
export class ApiError extends Error {
  readonly status: number;
  /** The answer's JSON body (null when it had none), for answers carrying more than `detail`. */
  readonly body: unknown;

  constructor(status: number, message: string, body: unknown = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/**
 * Fetch `path` (relative to the page, so a path prefix in front of the server works)
 * with the token. Throws ApiError for answers that are not 2xx.
 */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token !== null) {
    headers.set("Authorization", `Bearer ${token}`);
  }
  const url = new URL(path, document.baseURI);
  const response = await fetch(url, { ...init, headers, credentials: "same-origin" });
  if (!response.ok) {
    const method = init.method ?? "GET";
    // Validation errors carry a sentence for people in `detail`: show that alone.
    const { detail, body } = await errorDetail(response);
    throw new ApiError(
      response.status,
      detail ?? `${method} ${url.pathname}: ${response.status} ${response.statusText}`,
      body,
    );
  }
  return response;
}

async function errorDetail(response: Response): Promise<{ detail: string | null; body: unknown }> {
  try {
    const body: unknown = await response.json();
    if (typeof body === "object" && body !== null && "detail" in body) {
      const detail = (body as { detail: unknown }).detail;
      return { detail: typeof detail === "string" ? detail : JSON.stringify(detail), body };
    }
    return { detail: null, body };
  } catch {
    // not JSON: fall back to the status line
  }
  return { detail: null, body: null };
}

/** Send `body` as JSON with `method`; returns the parsed JSON answer. */
export async function sendJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "Content-Type": "application/json" };
  }
  const response = await apiFetch(path, init);
  const text = await response.text();
  return (text === "" ? null : JSON.parse(text)) as T;
}

/** The WebSocket URL for `path`, with the token when the page was given one. */
export function webSocketUrl(path: string): string {
  const url = new URL(path, document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (token !== null) {
    // Browsers cannot set headers on a WebSocket; the cookie usually suffices, this
    // covers pages whose cookie was refused.
    url.searchParams.set(TOKEN_PARAM, token);
  }
  return url.toString();
}

/** GET `path` and parse the answer as JSON. */
export async function getJson<T>(path: string): Promise<T> {
  const response = await apiFetch(path);
  return (await response.json()) as T;
}
