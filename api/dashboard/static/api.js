// Talking to the server: JSON calls with the session's token, and the change feed.
import { EventSource as TokenEventSource } from "eventsource";

const TOKEN_KEY = "corral.token";

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Kept in sessionStorage: it lasts while the tab does and is not sent anywhere but in
// the Authorization header of this page's own calls.
export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

function headers(extra) {
  const h = { Accept: "application/json", ...extra };
  const t = token.get();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

// The server's errors say what was wrong in `detail` (Litestar's shape).
async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") message = body.detail;
  } catch {
    // not JSON: the status says enough
  }
  if (response.status === 401) return new Unauthorized(message);
  return new ApiError(response.status, message);
}

export async function call(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response.json();
}

export const get = (path, params) => {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) query.append(name, String(one));
  }
  const text = query.toString();
  return call("GET", text ? `${path}?${text}` : path);
};

// The change feed: `onChange(tables)` each time the server says jobs or workers changed
// (a few times a second at most), `onState("live" | "lost")` as the stream comes and
// goes. The browser's EventSource when no token is needed; the `eventsource` package,
// the same API over fetch, when one must go in the Authorization header (EventSource
// cannot send headers). Both connect again by themselves after the `retry` the server
// sends first, so a server restart heals on its own.
export function follow(onChange, onState) {
  const url = "/api/v2/changes";
  const secret = token.get();
  const source = secret
    ? new TokenEventSource(url, {
        fetch: (input, init) =>
          fetch(input, {
            ...init,
            headers: { ...(init && init.headers), Authorization: `Bearer ${secret}` },
          }),
      })
    : new EventSource(url);
  source.onopen = () => onState("live");
  source.onerror = () => onState("lost");
  source.onmessage = (event) => {
    try {
      onChange(JSON.parse(event.data).tables || []);
    } catch {
      onChange(["jobs", "workers"]);
    }
  };
  return () => source.close();
}
