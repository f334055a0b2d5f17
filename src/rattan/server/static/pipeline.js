// rattan dashboard: one run's page. The graph is drawn from the run's stored tree and coloured by
// the node states; the run's event stream says when something changed, and the page then reads
// the states again (at most a few times a second). The panel on the right shows the selected
// node's data, histories and log, and the controls its state allows.
"use strict";

const Pipeline = (() => {
  const { h, badge, when, duration, json, toast, dialog } = UI;
  const SYSTEM_KEYS = new Set(["_loop", "_inner_loop", "_result"]);  // the engine's, not the service's

  function split(values) {
    const own = {}, system = {};
    for (const [k, v] of Object.entries(values || {})) (SYSTEM_KEYS.has(k) ? system : own)[k] = v;
    return { own, system };
  }

  function waitingText(waiting) {
    if (!waiting) return null;
    if (waiting.for === "callback") return `a callback (version ${waiting.version})`;
    if (waiting.for === "poll") return `a poll due ${when(waiting.due_time)}`;
    if (waiting.for === "operator") return "an operator: retry or skip";
    if (waiting.for === "resume") return "resume (paused)";
    return waiting.for;
  }

  function show(container, pipelineId, params) {
    const abort = new AbortController();
    const ui = { selected: params.get("node"), expanded: new Set(), select, toggle };
    let tree = null, index = new Map(), states = {}, summary = null, shownKey = null, timer = null;

    const head = h("div.page-head");
    const meta = h("div.meta");
    const alerts = h("div.alerts");
    const graph = h("div.graph-scroll.fit#graph", { onclick: () => select(null) });
    const zoom = h("button.btn.small#zoom", { type: "button", title: "fit the graph to the panel, or show it at full size" }, "Full size");
    zoom.addEventListener("click", () => {
      const fit = graph.classList.toggle("fit");
      zoom.textContent = fit ? "Full size" : "Fit";
    });
    const details = h("aside.card.details#details");
    const live = h("span.live#live", { "data-status": "connecting" }, "connecting");

    container.replaceChildren(h("section.page.pipeline-page", {},
      h("a.back", { href: "#/" }, "← Pipelines"), head, meta, alerts,
      h("div.pipeline-body", {},
        h("div.card.graph-card", {}, h("div.card-head", {}, h("h2", {}, "Graph"), legend(), live, zoom), graph),
        details)));
    head.appendChild(h("h1.mono", {}, pipelineId));

    function legend() {
      return h("div.legend", {}, ["RUNNING", "FINISHED", "FAILED", "SUSPENDED", "REVOKED", "NOT_REACHED"].map((s) =>
        h("span.legend-item", {}, h(`span.swatch.state-${s}`), s === "NOT_REACHED" ? "not reached" : s.toLowerCase())));
    }

    function select(id) {
      ui.selected = id;
      const q = new URLSearchParams(id ? { node: id } : {});
      history.replaceState(null, "", `#/pipelines/${encodeURIComponent(pipelineId)}${id ? `?${q}` : ""}`);
      draw();
      drawDetails(true);
    }

    function toggle(id) {
      if (ui.expanded.has(id)) ui.expanded.delete(id);
      else ui.expanded.add(id);
      draw();
      drawDetails(true);
    }

    function draw() {
      if (tree) Graph.render(graph, tree, states, ui);
    }

    async function control(path, body, done) {
      await Api.post(path, body);
      toast(done, "ok");
      refreshSoon();
    }

    function runActions(state) {
      const base = `/pipelines/${encodeURIComponent(pipelineId)}`;
      const buttons = [];
      const act = (text, cls, fn) => h(`button.btn.${cls}`, { type: "button", "data-action": text.toLowerCase(), onclick: fn }, text);
      const safely = (fn) => async () => { try { await fn(); } catch (err) { toast(`${err.error}: ${err.message}`, "error"); } };
      if (state === "RUNNING" || state === "BLOCKED") buttons.push(act("Pause", "", safely(() => control(`${base}/pause`, {}, "Pipeline paused"))));
      if (state === "SUSPENDED") buttons.push(act("Resume", "primary", safely(() => control(`${base}/resume`, {}, "Pipeline resumed"))));
      if (state && state !== "FINISHED" && state !== "REVOKED") {
        buttons.push(act("Revoke", "danger", () => dialog({
          title: "Revoke this pipeline?", danger: true, action: "Revoke",
          text: "A revoked run stops for good: it cannot be resumed or retried.",
          submit: () => control(`${base}/revoke`, {}, "Pipeline revoked"),
        })));
      }
      return h("div.actions#run-actions", {}, buttons);
    }

    function drawHead() {
      const root = states[pipelineId];
      const state = summary ? summary.state : root && root.state;
      head.replaceChildren(h("div.title", {}, h("h1.mono", {}, pipelineId), h("span#run-state", {}, badge(state))), runActions(state));
      const counts = {};
      for (const [id, st] of Object.entries(states)) if (id !== pipelineId) counts[st.state] = (counts[st.state] || 0) + 1;
      meta.replaceChildren(
        item("Created", when(root && root.created_time)), item("Started", when(root && root.started_time)),
        item("Finished", state === "FINISHED" || state === "REVOKED" ? when(root && root.archived_time) : "—"),
        item("Duration", duration(root && root.started_time, state === "FINISHED" || state === "REVOKED" ? root.archived_time : null)),
        item("Nodes", Object.entries(counts).map(([k, v]) => `${v} ${k.toLowerCase()}`).join(", ") || "—"));
      const failed = summary ? summary.failed_nodes : [];
      alerts.replaceChildren(...failed.map((f) => {
        const node = index.get(f.id);
        return h("div.alert", { onclick: () => select(f.id) },
          h("strong", {}, `${node ? Graph.label(node.node) : f.id} failed`), h("span", {}, f.error || "no error text"),
          h("span.alert-link", {}, "Inspect →"));
      }));
    }

    function item(label, value) {
      return h("div.meta-item", {}, h("span.meta-label", {}, label), h("span.meta-value", {}, value));
    }

    function nodeActions(id, node, st) {
      const path = `/nodes/${encodeURIComponent(id)}`;
      const list = [];
      const add = (text, cls, fn) => list.push(h(`button.btn.${cls}`, { type: "button", "data-action": text.replace("…", "").toLowerCase(), onclick: fn }, text));
      if (!st) return list;
      if (node.type === "ServiceActivity" && st.state === "FAILED") {
        add("Retry…", "primary", async () => {
          let inputs = {};
          try { inputs = split((await Api.get(`${path}/data`)).inputs).own; } catch (err) { inputs = {}; }
          dialog({
            title: "Retry node", action: "Retry",
            text: "Runs the node again. Edit its inputs to retry with new values (a JSON object of input name → value).",
            fields: [{ name: "data", label: "Inputs", kind: "json", value: JSON.stringify(inputs, null, 2) }],
            submit: (v) => {
              if (v.data !== null && (typeof v.data !== "object" || Array.isArray(v.data))) {
                throw new Api.ApiError(400, "BadInput", "the inputs must be a JSON object");
              }
              return control(`${path}/retry`, v.data === null ? {} : { data: v.data }, "Retry requested");
            },
          });
        });
        add("Skip…", "", () => dialog({
          title: "Skip node", action: "Skip", text: "Marks the failed node FINISHED without running it; the run goes on.",
          submit: () => control(`${path}/skip`, {}, "Node skipped"),
        }));
      }
      if (node.type === "ServiceActivity" && st.state === "RUNNING") {
        if (st.waiting && st.waiting.for === "callback") {
          add("Callback…", "primary", () => dialog({
            title: "Send a callback", action: "Send",
            text: `Delivers data to the waiting node (version ${st.waiting.version || st.version}), as its outside system would.`,
            fields: [{ name: "data", label: "Data (JSON)", kind: "json", value: "{}" }],
            submit: (v) => control(`${path}/callback`, { version: st.waiting.version || st.version, data: v.data }, "Callback sent"),
          }));
        }
        add("Force fail…", "danger", () => dialog({
          title: "Force this node to fail", action: "Force fail", danger: true,
          text: "Fails the running node now; retry or skip it afterwards.",
          fields: [{ name: "ex_data", label: "Reason", kind: "text", value: "forced to fail from the dashboard" }],
          submit: (v) => control(`${path}/force-fail`, { ex_data: v.ex_data }, "Node failed"),
        }));
      }
      if (node.type === "SubProcess" && st.state === "FAILED") {
        add("Retry subprocess", "primary", async () => {
          try { await control(`${path}/retry-subprocess`, {}, "Subprocess retried"); } catch (err) { toast(`${err.error}: ${err.message}`, "error"); }
        });
      }
      if (node.type === "ExclusiveGateway" && st.state === "FAILED") {
        const entry = index.get(id);
        const flows = Graph.outgoing(node).map((f) => entry.pipeline.flows[f]).filter(Boolean);
        add("Choose flow…", "primary", () => dialog({
          title: "Skip the gateway", action: "Take this flow", text: "The gateway failed to pick a flow: take this one.",
          fields: [{ name: "flow_id", label: "Flow", kind: "select", options: flows.map((f) => {
            const target = index.get(f.target);
            const cond = (node.conditions || {})[f.id];
            return { value: f.id, label: `→ ${target ? Graph.label(target.node) : f.target}${cond ? ` (${cond.evaluate})` : ""}` };
          }) }],
          submit: (v) => control(`${path}/skip-exclusive-gateway`, { flow_id: v.flow_id }, "Gateway skipped"),
        }));
      }
      return list;
    }

    function fill(node, ...children) {
      node.replaceChildren();
      UI.append(node, children);
    }

    function section(title, content, open) {
      return h("details.section", { open: open !== false }, h("summary", {}, title), content);
    }

    // (re)draw the selected node's panel; its data is read again only when `reload` or when
    // the node's state changed since it was last drawn
    async function drawDetails(reload) {
      const id = ui.selected;
      const entry = id ? index.get(id) : null;
      if (!entry) {
        shownKey = null;
        details.replaceChildren(h("div.details-empty", {}, h("h2", {}, "Node details"),
          h("p.muted", {}, "Select a node in the graph to see its inputs, outputs, histories and log, and the controls its state allows.")));
        return;
      }
      const st = states[id];
      const key = JSON.stringify([id, st && st.state, st && st.version, st && st.retry, st && st.waiting, ui.expanded.has(id)]);
      if (!reload && key === shownKey) return;
      shownKey = key;
      const node = entry.node;
      const facts = [
        ["Id", h("span.mono", {}, id)], ["Type", node.type],
        node.component ? ["Component", h("span.mono", {}, node.component.code)] : null,
        st ? ["Version", h("span.mono", {}, st.version)] : null,
        st ? ["Loop / retries", `${st.loop} / ${st.retry}${st.skip ? " (skipped)" : ""}`] : null,
        st ? ["Started", when(st.started_time)] : null,
        st ? ["Finished", st.state === "FINISHED" || st.state === "FAILED" || st.state === "REVOKED" ? when(st.archived_time) : "—"] : null,
        st && st.waiting ? ["Waits for", waitingText(st.waiting)] : null,
      ].filter(Boolean);
      const top = [
        h("div.details-head", {}, h("h2", {}, Graph.label(node)), badge(st ? st.state : null)),
        h("dl.facts", {}, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
        node.type === "SubProcess" ? h("button.btn.small", { type: "button", onclick: () => toggle(id) }, ui.expanded.has(id) ? "Collapse in graph" : "Expand in graph") : null,
        h("div.actions#node-actions", {}, nodeActions(id, node, st)),
      ];
      if (!st) {
        fill(details, top, h("p.muted", {}, "Not reached yet: no data."));
        return;
      }
      fill(details, top, h("p.muted", {}, "Loading…"));
      const path = `/nodes/${encodeURIComponent(id)}`;
      const [data, hist, log] = await Promise.all([
        Api.get(`${path}/data`).catch((e) => ({ error: e })),
        Api.get(`${path}/histories`).catch((e) => ({ error: e })),
        Api.get(`${path}/log`).catch((e) => ({ error: e })),
      ]);
      if (ui.selected !== id || shownKey !== key) return;  // another node or state meanwhile
      const inputs = split(data.inputs), outputs = split(data.outputs);
      const exData = outputs.own.ex_data;
      delete outputs.own.ex_data;
      fill(details, top,
        exData !== undefined && exData !== null && exData !== "" ? section("Error (ex_data)", h("pre.error#ex-data", {}, typeof exData === "string" ? exData : JSON.stringify(exData, null, 2))) : null,
        data.error ? h("p.muted", {}, data.error.message) : [
          section("Inputs", h("div#inputs", {}, json(inputs.own))),
          section("Outputs", h("div#outputs", {}, json(outputs.own))),
        ],
        section(`Histories (${hist.histories ? hist.histories.length : 0})`, histories(hist), false),
        section("Log", log.log ? h("pre.log#log", {}, log.log) : h("p.muted", {}, "No log lines."), !!log.log));
    }

    function histories(hist) {
      if (hist.error) return h("p.muted", {}, hist.error.message);
      if (!hist.histories.length) return h("p.muted", {}, "No earlier passes.");
      return h("div.histories", {}, hist.histories.map((x, i) => h("details.history", {},
        h("summary", {}, `#${i + 1} · loop ${x.loop} · ${x.skip ? "skipped" : x.state || (x.outputs && x.outputs._result === false ? "failed" : "ran")} · ${when(x.started_time)}`),
        h("div.history-body", {}, h("h4", {}, "Inputs"), json(split(x.inputs).own), h("h4", {}, "Outputs"), json(split(x.outputs).own)))));
    }

    async function refresh() {
      try {
        const got = await Api.get(`/pipelines/${encodeURIComponent(pipelineId)}`);
        if (abort.signal.aborted) return;
        summary = got.pipeline;
        const root = got.states;
        if (!root) return;  // archived meanwhile: keep what is shown
        states = { [root.id]: root };
        for (const [id, st] of Object.entries(root.children || {})) states[id] = st;
        drawHead();
        draw();
        drawDetails(false);
      } catch (err) {
        if (err.status !== 401) toast(`${err.error}: ${err.message}`, "error");
      }
    }

    function refreshSoon() {
      if (timer) return;
      timer = setTimeout(() => { timer = null; refresh(); }, 150);
    }

    async function start() {
      try {
        tree = (await Api.get(`/pipelines/${encodeURIComponent(pipelineId)}/tree`)).pipeline;
      } catch (err) {
        if (err.status === 401) return;
        graph.replaceChildren(h("p.empty", {}, err.status === 404 ? `There is no pipeline ${pipelineId}.` : `${err.error}: ${err.message}`));
        live.remove();
        return;
      }
      index = Graph.index(tree);
      // open the subprocesses that have failures or run now: that is where one looks first
      await refresh();
      for (const [id, entry] of index) {
        if (entry.node.type === "SubProcess" && states[id] && ["FAILED", "RUNNING"].includes(states[id].state)) ui.expanded.add(id);
      }
      draw();
      drawDetails(true);
      Api.stream(`/pipelines/${encodeURIComponent(pipelineId)}/events/stream`, 0, (event) => {
        if (event.node_id && event.node_id === ui.selected) shownKey = null;
        refreshSoon();
      }, (status) => { live.dataset.status = status; live.textContent = status; }, abort.signal);
    }

    start();
    return () => { abort.abort(); clearTimeout(timer); };
  }

  return { show };
})();
