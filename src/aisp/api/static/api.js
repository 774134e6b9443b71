// HTTP and live-feed helpers: the API key, fetch with X-API-Key, unified error bodies, URL
// tickets, and the /ws/live WebSocket with reconnect.

const KEY_STORAGE = "aisp.apiKey";

export const auth = {
  get key() {
    try {
      return localStorage.getItem(KEY_STORAGE) || "";
    } catch {
      return "";
    }
  },
  set key(value) {
    try {
      if (value) localStorage.setItem(KEY_STORAGE, value);
      else localStorage.removeItem(KEY_STORAGE);
    } catch {
      /* storage disabled: the key lives for this page only */
    }
  },
};

export class ApiError extends Error {
  constructor(status, name, message, details) {
    super(message);
    this.status = status;
    this.name = name || "HTTP_ERROR";
    this.details = details || {};
  }
}

// The long-lived key never goes into a URL. For the places that cannot send headers (<img>
// MJPEG views, WebSockets), ask for a short-lived, single-use ticket scoped to the path
// (POST /api/auth/ticket, key in a header) and put that in the URL instead.
export async function ticketUrl(path) {
  if (!auth.key) return path; // auth off: no credentials needed
  const { ticket } = await api("/api/auth/ticket", { method: "POST", body: { path } });
  return path + (path.includes("?") ? "&" : "?") + "ticket=" + encodeURIComponent(ticket);
}

export async function api(path, { method = "GET", body, raw = false, key } = {}) {
  const headers = { Accept: "application/json" };
  const k = key ?? auth.key;
  if (k) headers["X-API-Key"] = k;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  } catch (exc) {
    throw new ApiError(0, "NETWORK_ERROR", `server unreachable (${exc.message})`);
  }
  if (!res.ok) throw await toError(res);
  if (raw) return res;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

async function toError(res) {
  let name = "HTTP_" + res.status;
  let message = `${res.status} ${res.statusText}`;
  let details = {};
  try {
    const data = await res.json();
    if (data && data.error) {
      name = data.error.name || name;
      message = data.error.message || message;
      details = data.error.details || {};
    } else if (data && data.detail) {
      message = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    }
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(res.status, name, message, details);
}

// Download through fetch so that the key travels in a header, then save the blob.
export async function download(path, filename) {
  const res = await api(path, { raw: true });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// The live feed: one JSON summary per second over WebSocket, reconnecting with backoff.
export class LiveFeed {
  constructor(path, { onMessage, onState }) {
    this.path = path;
    this.onMessage = onMessage;
    this.onState = onState || (() => {});
    this.ws = null;
    this.delay = 500;
    this.closed = false;
    this._timer = null;
  }

  start() {
    this.closed = false;
    this._connect();
  }

  stop() {
    this.closed = true;
    clearTimeout(this._timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  async _connect() {
    this.onState("connecting");
    let url;
    try {
      url = await ticketUrl(this.path);
    } catch (err) {
      if (this.closed) return;
      if (err.status === 401 || err.status === 403) {
        this.onState("unauthorized");
        return;
      }
      this.onState("offline");
      this._timer = setTimeout(() => this._connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 8000);
      return;
    }
    if (this.closed) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + url);
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 500;
      this.onState("live");
    };
    ws.onmessage = (ev) => {
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.onMessage(data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) return;
      // 4401/4403: the key was refused; the app asks for a new one instead of retrying.
      if (ev.code === 4401 || ev.code === 4403) {
        this.onState("unauthorized");
        return;
      }
      this.onState("offline");
      this._timer = setTimeout(() => this._connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 8000);
    };
  }
}
