// rattan dashboard: talking to the JSON API. Every call sends the bearer token the user gave
// (kept in this tab's sessionStorage only), and the event stream is read with fetch() so that it
// can send the same Authorization header (an EventSource cannot send headers).
"use strict";

const Api = (() => {
  // relative to /dashboard/, so a reverse proxy that serves rattan under a path prefix still works
  const BASE = new URL("../api/v1", document.baseURI).pathname;
  const KEY = "rattan.token";

  class ApiError extends Error {
    constructor(status, error, message) {
      super(message || error || `HTTP ${status}`);
      this.status = status;
      this.error = error || `HTTP ${status}`;
    }
  }

  let onUnauthorized = () => {};

  function token() {
    return sessionStorage.getItem(KEY);
  }

  function setToken(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  }

  function headers(extra) {
    return Object.assign({ Authorization: `Bearer ${token() || ""}` }, extra || {});
  }

  async function call(method, path, body, tokenOverride) {
    const init = { method, headers: headers() };
    if (tokenOverride !== undefined) init.headers.Authorization = `Bearer ${tokenOverride}`;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(BASE + path, init);
    } catch (err) {
      throw new ApiError(0, "NetworkError", "the server cannot be reached");
    }
    let data = null;
    try {
      data = await res.json();
    } catch (err) {
      data = null;
    }
    if (!res.ok) {
      const error = new ApiError(res.status, data && data.error, data && data.message);
      // a token that stopped working (removed from the tokens file) sends the user to sign in
      if (res.status === 401 && tokenOverride === undefined) onUnauthorized(error);
      throw error;
    }
    return data;
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      if (signal) signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }

  // Follow an event stream from event id `after` until `signal` aborts. Reconnects after a drop
  // with ?after=<last id seen>, so no event is lost or repeated (the log is durable).
  async function stream(path, after, onEvent, onStatus, signal) {
    let last = after;
    while (!signal.aborted) {
      try {
        const res = await fetch(`${BASE}${path}?after=${last}`, { headers: headers(), signal });
        if (res.status === 401) {
          onUnauthorized(new ApiError(401, "Unauthorized", "the bearer token is not valid"));
          return;
        }
        if (!res.ok || !res.body) throw new ApiError(res.status, "StreamError", `stream answered ${res.status}`);
        onStatus("live");
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        let data = null;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n")) >= 0) {
            const line = buffer.slice(0, cut).replace(/\r$/, "");
            buffer = buffer.slice(cut + 1);
            if (line === "") {
              if (data !== null) {
                const event = JSON.parse(data);
                last = event.id;
                onEvent(event);
              }
              data = null;
            } else if (line.startsWith("data:")) {
              const part = line.slice(5).replace(/^ /, "");
              data = data === null ? part : `${data}\n${part}`;
            }
          }
        }
      } catch (err) {
        if (signal.aborted) return;
      }
      onStatus("reconnecting");
      await sleep(2000, signal);
    }
  }

  return {
    ApiError,
    token,
    setToken,
    stream,
    sleep,
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body === undefined ? {} : body),
    check: (candidate) => call("GET", "/pipelines?limit=1", undefined, candidate),
    set onUnauthorized(fn) { onUnauthorized = fn; },
  };
})();
