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

  constructor(status: number, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
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
    throw new ApiError(
      response.status,
      `${method} ${url.pathname}: ${response.status} ${response.statusText}`,
    );
  }
  return response;
}

/** GET `path` and parse the answer as JSON. */
export async function getJson<T>(path: string): Promise<T> {
  const response = await apiFetch(path);
  return (await response.json()) as T;
}
