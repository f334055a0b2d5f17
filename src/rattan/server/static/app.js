// rattan dashboard: sign-in, the router (#/ is the list of runs, #/pipelines/ID a run) and the
// list page. The list reloads every few seconds while it is shown; a run's page follows the
// event stream (pipeline.js).
"use strict";

(() => {
  const { h, badge, when, duration, toast } = UI;
  const view = () => document.getElementById("view");
  const FILTERS = [
    ["", "All"], ["RUNNING", "Running"], ["failed", "With failures"], ["SUSPENDED", "Paused"],
    ["FINISHED", "Finished"], ["REVOKED", "Revoked"],
  ];
  const BAR_ORDER = ["FINISHED", "RUNNING", "SUSPENDED", "BLOCKED", "ROLLING_BACK", "READY", "FAILED", "REVOKED"];
  const PAGE = 100, MAX = 1000;  // MAX: the API's largest page
  let leave = () => {};  // stops what the current page runs (timers, streams)

  function signIn(message) {
    leave();
    leave = () => {};
    Api.setToken(null);
    document.body.classList.add("signed-out");
    const input = h("input#token", { type: "password", name: "token", autocomplete: "off", placeholder: "bearer token", "aria-label": "token" });
    const error = h("p.login-error#login-error", { role: "alert" }, message || "");
    const button = h("button.btn.primary#sign-in", { type: "submit" }, "Sign in");
    const form = h("form.login", {},
      h("div.login-brand", {}, h("span.logo", {}, "r"), "rattan"),
      h("p.login-text", {}, "Paste a token from the server's tokens file. It needs the read scope; the controls need operate. It is kept in this browser tab only."),
      input, button, error);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const candidate = input.value.trim();
      if (!candidate) { error.textContent = "Enter a token."; return; }
      button.disabled = true;
      error.textContent = "";
      try {
        await Api.check(candidate);
        Api.setToken(candidate);
        route();
      } catch (err) {
        error.textContent = err.status === 401 ? "This token is not valid on this server."
          : err.status === 403 ? "This token lacks the read scope." : `${err.error}: ${err.message}`;
        button.disabled = false;
      }
    });
    view().replaceChildren(h("div.login-page", {}, form));
    input.focus();
  }

  function parseHash() {
    const raw = location.hash.replace(/^#/, "") || "/";
    const [path, query] = raw.split("?");
    return { path, params: new URLSearchParams(query || "") };
  }

  function route() {
    leave();
    leave = () => {};
    if (!Api.token()) { signIn(); return; }
    document.body.classList.remove("signed-out");
    const { path, params } = parseHash();
    const match = path.match(/^\/pipelines\/([^/]+)$/);
    if (match) leave = Pipeline.show(view(), decodeURIComponent(match[1]), params);
    else leave = listPage(params);
  }

  function counts(nodeCounts) {
    const total = Object.values(nodeCounts || {}).reduce((a, b) => a + b, 0);
    if (!total) return h("span.muted", {}, "—");
    const bar = h("div.countbar", { title: Object.entries(nodeCounts).map(([k, v]) => `${k}: ${v}`).join(", ") });
    for (const s of BAR_ORDER) {
      const n = nodeCounts[s];
      // through the CSSOM: the Content-Security-Policy refuses inline style attributes
      if (n) bar.appendChild(h(`span.seg.state-${s}`)).style.flexGrow = String(n);
    }
    const finished = nodeCounts.FINISHED || 0;
    return h("div.counts", {}, bar, h("span.count-text", {}, `${finished}/${total} finished`));
  }

  function listPage(params) {
    const filter = params.get("state") || "";
    let search = params.get("q") || "";
    let runs = [], limit = PAGE, more = false, stopped = false, timer = null;
    const rows = h("tbody#runs");
    const footer = h("div.list-footer");
    const status = h("span.muted.list-status");
    const searchBox = h("input.search#search", { type: "search", placeholder: "Search by pipeline id", value: search, "aria-label": "search" });
    const chips = FILTERS.map(([value, text]) => h(`button.chip${value === filter ? ".active" : ""}`, {
      type: "button", "data-filter": value || "all",
      onclick: () => { location.hash = `#/?${new URLSearchParams(value ? { state: value } : {})}`; },
    }, text));

    const query = (size) => {
      const q = new URLSearchParams({ limit: size });
      if (filter === "failed") q.set("has_failed_nodes", "true");
      else if (filter) q.set("state", filter);
      return `/pipelines?${q}`;
    };

    function draw() {
      const needle = search.trim().toLowerCase();
      const shown = needle ? runs.filter((r) => r.id.toLowerCase().includes(needle)) : runs;
      rows.replaceChildren(...shown.map((r) => h("tr.run", { "data-id": r.id, "data-state": r.state, onclick: () => { location.hash = `#/pipelines/${encodeURIComponent(r.id)}`; } },
        h("td", {}, h("a.mono", { href: `#/pipelines/${encodeURIComponent(r.id)}` }, r.id)),
        h("td", {}, badge(r.state)),
        h("td", {}, counts(r.node_counts)),
        h("td", {}, r.failed_nodes.length ? h("span.failed-count", {}, `${r.failed_nodes.length} failed`) : h("span.muted", {}, "—")),
        h("td.nowrap", {}, when(r.created_time)),
        h("td.nowrap", {}, duration(r.started_time || r.created_time, r.finished_time)))));
      if (!shown.length) {
        const why = needle ? `No loaded run matches "${search}". Press Enter to open it by its exact id.` : "No runs here yet.";
        rows.appendChild(h("tr", {}, h("td.empty", { colspan: 6 }, why)));
      }
      footer.replaceChildren(more ? h("button.btn", { type: "button", onclick: loadMore }, "Load more") : "");
      status.textContent = `${runs.length} run${runs.length === 1 ? "" : "s"}${more ? "+" : ""} · updated ${new Date().toLocaleTimeString()}`;
    }

    async function load() {
      try {
        // reload everything shown (all the pages loaded so far), so new runs and states appear
        const page = await Api.get(query(limit));
        if (stopped) return;
        runs = page.pipelines;
        more = runs.length === limit && limit < MAX;
        draw();
      } catch (err) {
        if (!stopped && err.status !== 401) toast(`${err.error}: ${err.message}`, "error");
      }
    }

    function loadMore() {
      limit = Math.min(limit + PAGE, MAX);
      load();
    }

    searchBox.addEventListener("input", () => { search = searchBox.value; draw(); });
    searchBox.addEventListener("keydown", async (ev) => {
      if (ev.key !== "Enter" || !searchBox.value.trim()) return;
      const id = searchBox.value.trim();
      try {
        await Api.get(`/pipelines/${encodeURIComponent(id)}`);
        location.hash = `#/pipelines/${encodeURIComponent(id)}`;
      } catch (err) {
        if (err.status !== 401) toast(err.status === 404 ? `No pipeline ${id}` : `${err.error}: ${err.message}`, "error");
      }
    });

    view().replaceChildren(h("section.page", {},
      h("div.page-head", {}, h("h1", {}, "Pipelines"), status),
      h("div.toolbar", {}, h("div.chips", { role: "group", "aria-label": "state filter" }, chips), searchBox,
        h("button.btn", { type: "button", onclick: load }, "Refresh")),
      h("div.card", {}, h("table.runs", {},
        h("thead", {}, h("tr", {}, ["Pipeline", "State", "Progress", "Failures", "Created", "Duration"].map((t) => h("th", {}, t)))),
        rows)),
      footer));
    rows.appendChild(h("tr", {}, h("td.empty", { colspan: 6 }, "Loading…")));
    load();
    timer = setInterval(() => { if (!document.hidden) load(); }, 3000);
    return () => { stopped = true; clearInterval(timer); };
  }

  Api.onUnauthorized = () => signIn("The token is no longer valid: sign in again.");
  window.addEventListener("hashchange", route);
  document.getElementById("sign-out").addEventListener("click", () => signIn());
  route();
})();
