// rattan dashboard: drawing a run's graph as SVG from its stored tree. A small layered layout,
// left to right: each node's column is its longest distance from the start event (flows that
// close a loop are left out of that count and drawn as arcs under the graph), nodes in a column
// are ordered to reduce crossings, and an expanded subprocess is laid out the same way inside
// its own box.
"use strict";

const Graph = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const SIZE = { event: [34, 34], gateway: [42, 42], activity: [164, 52] };
  const GAP_X = 42, GAP_LABELLED = 110, GAP_Y = 24, PAD = 16, HEADER = 30;
  const GATEWAY_MARK = {
    ExclusiveGateway: "×", ParallelGateway: "+", ConditionalParallelGateway: "◇", ConvergeGateway: "+",
  };

  function outgoing(node) {
    const out = node.outgoing || [];
    return typeof out === "string" ? (out ? [out] : []) : out;
  }

  function kindOf(node) {
    if (node.type === "SubProcess") return "subprocess";
    if (/Gateway$/.test(node.type || "")) return "gateway";
    if (/Event$/.test(node.type || "")) return "event";
    return "activity";
  }

  function label(node) {
    if (node.name) return node.name;
    if (node.component && node.component.code) return node.component.code;
    if (node.type === "SubProcess") return "subprocess";
    return node.type || node.id;
  }

  // every node of one pipeline level, start event first
  function nodesOf(pipeline) {
    const nodes = [pipeline.start_event, ...Object.values(pipeline.activities || {}),
      ...Object.values(pipeline.gateways || {}), pipeline.end_event];
    return nodes.filter(Boolean);
  }

  function flowLabel(pipeline, flow) {
    const gateway = (pipeline.gateways || {})[flow.source];
    if (!gateway) return "";
    if (flow.is_default || gateway.default_condition && gateway.default_condition.flow_id === flow.id) return "default";
    const cond = (gateway.conditions || {})[flow.id];
    return cond && cond.evaluate ? String(cond.evaluate) : "";
  }

  // columns by longest path from the start, ignoring the flows that go back (loops)
  function ranks(pipeline, nodes, flows) {
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const colour = new Map(), order = [], back = new Set(), seen = [];
    const visit = (id) => {
      colour.set(id, 1);
      seen.push(id);  // first seen first: a gateway's branches keep the order of its flows
      for (const f of outgoing(byId.get(id))) {
        const flow = flows[f];
        if (!flow || !byId.has(flow.target)) continue;
        const c = colour.get(flow.target);
        if (c === 1) back.add(f);
        else if (!c) visit(flow.target);
      }
      colour.set(id, 2);
      order.push(id);
    };
    visit(pipeline.start_event.id);
    for (const n of nodes) if (!colour.has(n.id)) visit(n.id);
    order.reverse();
    const rank = new Map(order.map((id) => [id, 0]));
    for (const id of order) {
      for (const f of outgoing(byId.get(id))) {
        const flow = flows[f];
        if (!flow || back.has(f) || !rank.has(flow.target)) continue;
        rank.set(flow.target, Math.max(rank.get(flow.target), rank.get(id) + 1));
      }
    }
    return { rank, order, back, seen };
  }

  // barycentre ordering of each column, a few sweeps each way
  function orderColumns(columns, edges) {
    const pos = new Map();
    const index = () => columns.forEach((col) => col.forEach((id, i) => pos.set(id, i)));
    index();
    const preds = new Map(), succs = new Map();
    for (const e of edges) {
      if (e.back) continue;
      (preds.get(e.target) || preds.set(e.target, []).get(e.target)).push(e.source);
      (succs.get(e.source) || succs.set(e.source, []).get(e.source)).push(e.target);
    }
    const sweep = (cols, neighbours) => {
      for (const col of cols) {
        const weight = new Map(col.map((id) => {
          const ns = neighbours.get(id) || [];
          return [id, ns.length ? ns.reduce((s, n) => s + pos.get(n), 0) / ns.length : pos.get(id)];
        }));
        col.sort((a, b) => weight.get(a) - weight.get(b));
        col.forEach((id, i) => pos.set(id, i));
      }
    };
    for (let i = 0; i < 4; i++) {
      sweep(columns.slice(1), preds);
      sweep(columns.slice(0, -1).reverse(), succs);
    }
    index();
  }

  // lay out one pipeline level: {width, height, boxes: [{node, kind, x, y, w, h, inner}], edges}
  function layout(pipeline, expanded) {
    const nodes = nodesOf(pipeline);
    const flows = pipeline.flows || {};
    const { rank, back, seen } = ranks(pipeline, nodes, flows);
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const boxes = new Map();
    for (const node of nodes) {
      const kind = kindOf(node);
      let inner = null, w, h;
      if (kind === "subprocess" && expanded.has(node.id) && node.pipeline) {
        inner = layout(node.pipeline, expanded);
        w = inner.width + 2 * PAD;
        h = inner.height + HEADER + PAD;
      } else {
        [w, h] = SIZE[kind === "subprocess" ? "activity" : kind];
      }
      boxes.set(node.id, { node, kind, w, h, inner, x: 0, y: 0 });
    }
    const edges = Object.values(flows)
      .filter((f) => byId.has(f.source) && byId.has(f.target))
      .map((f) => ({ id: f.id, source: f.source, target: f.target, back: back.has(f.id), text: flowLabel(pipeline, f) }));
    const columns = [];
    for (const id of seen) (columns[rank.get(id)] = columns[rank.get(id)] || []).push(id);
    const cols = columns.filter(Boolean);
    orderColumns(cols, edges);
    const heights = cols.map((col) => col.reduce((s, id) => s + boxes.get(id).h, 0) + GAP_Y * (col.length - 1));
    const height = Math.max(...heights, 0);
    let x = 0;
    cols.forEach((col, i) => {
      const width = Math.max(...col.map((id) => boxes.get(id).w));
      let y = (height - heights[i]) / 2;
      for (const id of col) {
        const b = boxes.get(id);
        b.x = x + (width - b.w) / 2;
        b.y = y;
        y += b.h + GAP_Y;
      }
      // wider after a column whose flows carry conditions, to leave room for their text
      x += width + (col.some((id) => edges.some((e) => e.source === id && e.text)) ? GAP_LABELLED : GAP_X);
    });
    const loops = edges.some((e) => e.back) ? (edges.some((e) => e.back && e.text) ? 54 : 40) : 0;  // room for the arcs of loops
    const last = cols.length ? cols[cols.length - 1] : [];
    const trailing = last.some((id) => edges.some((e) => e.source === id && e.text)) ? GAP_LABELLED : GAP_X;
    return { width: Math.max(x - trailing, 0), height: height + loops, boxes: [...boxes.values()], edges, byId: boxes };
  }

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, value, cls, max) {
    const t = el("text", { x, y, class: cls }, parent);
    const s = String(value);
    t.textContent = max && s.length > max ? `${s.slice(0, max - 1)}…` : s;
    return t;
  }

  function edgePath(a, b, back, height) {
    if (back) {  // a loop: leave under the source, come back under the target
      const sx = a.x + a.w / 2, sy = a.y + a.h, tx = b.x + b.w / 2, ty = b.y + b.h;
      const low = height - 8;
      return `M${sx},${sy} C${sx},${low} ${tx},${low} ${tx},${ty + 7}`;
    }
    const sx = a.x + a.w, sy = a.y + a.h / 2, tx = b.x - 7, ty = b.y + b.h / 2;
    const dx = Math.max((tx - sx) / 2, 20);
    return `M${sx},${sy} C${sx + dx},${sy} ${tx - dx},${ty} ${tx},${ty}`;
  }

  function stateText(st) {
    if (!st) return "not reached";
    if (st.waiting && st.waiting.for === "callback") return "awaiting callback";
    if (st.retry) return `${st.state} · retried ${st.retry}×`;
    if (st.skip) return `${st.state} · skipped`;
    return st.state;
  }

  function drawLevel(parent, lay, states, ui) {
    for (const e of lay.edges) {
      const a = lay.byId.get(e.source), b = lay.byId.get(e.target);
      const reached = states[e.source] && states[e.target];
      el("path", {
        d: edgePath(a, b, e.back, lay.height), class: `edge${reached ? " reached" : ""}`,
        "marker-end": reached ? "url(#arrow-on)" : "url(#arrow)", "data-flow-id": e.id,
      }, parent);
      if (e.text) {
        if (e.back) {  // under the lowest point of the arc
          const low = lay.height - 8;
          const my = 0.125 * (a.y + a.h) + 0.75 * low + 0.125 * (b.y + b.h) + 13;
          text(parent, (a.x + a.w / 2 + b.x + b.w / 2) / 2, my, e.text, "edge-label loop", 24);
        } else {  // near the target, where the flows of a gateway have spread apart
          text(parent, b.x - 8, b.y + b.h / 2 - 7, e.text, "edge-label", 18);
        }
      }
    }
    for (const b of lay.boxes) drawBox(parent, b, states, ui);
  }

  function drawBox(parent, b, states, ui) {
    const st = states[b.node.id];
    const state = st ? st.state : "NOT_REACHED";
    const g = el("g", {
      class: `node ${b.kind} state-${state}${ui.selected === b.node.id ? " selected" : ""}`,
      transform: `translate(${b.x},${b.y})`, "data-node-id": b.node.id, "data-state": state, tabindex: "0",
    }, parent);
    el("title", {}, g).textContent = `${label(b.node)} (${b.node.type})\n${b.node.id}\n${stateText(st)}`;
    g.addEventListener("click", (ev) => { ev.stopPropagation(); ui.select(b.node.id); });
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter") ui.select(b.node.id); });
    if (b.kind === "event") {
      el("circle", { cx: b.w / 2, cy: b.h / 2, r: b.w / 2, class: `shape${/End/.test(b.node.type) ? " end" : ""}` }, g);
      text(g, b.w / 2, b.h + 14, /Start/.test(b.node.type) ? "start" : "end", "caption");
      return;
    }
    if (b.kind === "gateway") {
      const m = b.w / 2;
      el("polygon", { points: `${m},0 ${b.w},${m} ${m},${b.h} 0,${m}`, class: "shape" }, g);
      text(g, m, m + 6, GATEWAY_MARK[b.node.type] || "?", "gateway-mark");
      if (b.node.name) text(g, m, b.h + 14, b.node.name, "caption", 24);
      return;
    }
    el("rect", { width: b.w, height: b.h, rx: 8, class: "shape" }, g);
    el("rect", { width: 5, height: b.h, rx: 2, class: "stripe" }, g);
    if (b.kind === "subprocess") {
      el("rect", { x: 3, y: 3, width: b.w - 6, height: b.h - 6, rx: 6, class: "inner-border" }, g);
      const toggle = el("g", { class: "toggle", transform: `translate(${b.w - 24},6)`, "data-toggle": b.node.id }, g);
      el("rect", { width: 18, height: 18, rx: 4 }, toggle);
      text(toggle, 9, 13.5, b.inner ? "−" : "+", "toggle-mark");
      toggle.addEventListener("click", (ev) => { ev.stopPropagation(); ui.toggle(b.node.id); });
    }
    if (b.inner) {
      text(g, 14, 20, label(b.node), "title", 40);
      const inner = el("g", { transform: `translate(${PAD},${HEADER})` }, g);
      drawLevel(inner, b.inner, states, ui);
      return;
    }
    text(g, 14, 22, label(b.node), "title", 19);
    text(g, 14, 40, stateText(st), "subtitle", 24);
  }

  function defs(svg) {
    const d = el("defs", {}, svg);
    for (const [id, cls] of [["arrow", "arrow"], ["arrow-on", "arrow reached"]]) {
      const m = el("marker", { id, viewBox: "0 0 10 10", refX: 2, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, d);
      el("path", { d: "M0,0 L10,5 L0,10 z", class: cls }, m);
    }
  }

  // draw `pipeline` into `container`; ui: {selected, select(id), toggle(id), expanded: Set}
  function render(container, pipeline, states, ui) {
    const lay = layout(pipeline, ui.expanded);
    const margin = 24;
    const w = lay.width + 2 * margin, h = lay.height + 2 * margin + 14;
    const svg = el("svg", { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: "graph", role: "img", "aria-label": "pipeline graph" });
    defs(svg);
    const root = el("g", { transform: `translate(${margin},${margin})` }, svg);
    drawLevel(root, lay, states, ui);
    container.replaceChildren(svg);
  }

  // node id -> its tree entry, subprocesses' nodes included; with `parents` the subprocess chain
  function index(pipeline, found, parents) {
    found = found || new Map();
    for (const node of nodesOf(pipeline)) {
      found.set(node.id, { node, parents: parents || [], pipeline });
      if (node.type === "SubProcess" && node.pipeline) index(node.pipeline, found, [...(parents || []), node.id]);
    }
    return found;
  }

  return { render, index, label, outgoing, stateText };
})();
