// rattan dashboard: the DOM helpers and the shared pieces of the pages (state badges, JSON
// blocks, the dialog used by the controls, toasts). Values from the server are only ever set as
// text (textContent), never parsed as HTML.
"use strict";

const UI = (() => {
  // h("div.card#main", {title: "x", onclick: fn}, child, "text", [children])
  function h(spec, attrs, ...children) {
    const [tagAndClasses, id] = spec.split("#");
    const [tag, ...classes] = tagAndClasses.split(".");
    const node = document.createElement(tag || "div");
    if (classes.length) node.className = classes.join(" ");
    if (id) node.id = id;
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function badge(state) {
    const s = state || "NOT_REACHED";
    return h(`span.badge.state-${s}`, { "data-state": s }, s === "NOT_REACHED" ? "not reached" : s.toLowerCase().replace("_", " "));
  }

  function when(value) {
    if (!value) return "—";
    const d = new Date(String(value).replace(" ", "T"));
    if (Number.isNaN(d.getTime())) return String(value);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function duration(start, end) {
    if (!start) return "—";
    const a = new Date(String(start).replace(" ", "T")).getTime();
    const b = end ? new Date(String(end).replace(" ", "T")).getTime() : Date.now();
    const s = Math.max(0, (b - a) / 1000);
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    if (s < 60) return `${s.toFixed(1)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }

  function json(value) {
    return h("pre.json", {}, JSON.stringify(value, null, 2));
  }

  let toastTimer = null;
  function toast(message, kind) {
    const box = document.getElementById("toast");
    box.className = `toast show ${kind || "info"}`;
    box.textContent = message;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.className = "toast"; }, kind === "error" ? 8000 : 3500);
  }

  // A modal dialog: fields [{name, label, value, kind: "json"|"text"|"select", options}], then
  // `submit(values)` (a promise); its error is shown in the dialog, which stays open to fix it.
  function dialog({ title, text, fields, action, danger, submit }) {
    const inputs = {};
    const error = h("p.dialog-error", { role: "alert" });
    const body = (fields || []).map((f) => {
      let input;
      if (f.kind === "select") {
        input = h("select", { name: f.name }, f.options.map((o) => h("option", { value: o.value }, o.label)));
      } else if (f.kind === "json") {
        input = h("textarea", { name: f.name, rows: 8, spellcheck: "false" });
        input.value = f.value;
      } else {
        input = h("input", { name: f.name, type: "text", value: f.value || "" });
      }
      inputs[f.name] = { input, field: f };
      return h("label.field", {}, h("span", {}, f.label), input, f.hint ? h("small", {}, f.hint) : null);
    });
    const close = () => { overlay.remove(); document.removeEventListener("keydown", onKey); };
    const onKey = (ev) => { if (ev.key === "Escape") close(); };
    const ok = h(`button.btn.${danger ? "danger" : "primary"}`, { type: "submit" }, action);
    const form = h("form.dialog", { role: "dialog", "aria-label": title },
      h("h2", {}, title), text ? h("p.dialog-text", {}, text) : null, body, error,
      h("div.dialog-buttons", {}, h("button.btn", { type: "button", onclick: close }, "Cancel"), ok));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const values = {};
      for (const [name, { input, field }] of Object.entries(inputs)) {
        if (field.kind === "json") {
          try {
            values[name] = input.value.trim() ? JSON.parse(input.value) : null;
          } catch (err) {
            error.textContent = `${field.label}: not valid JSON (${err.message})`;
            return;
          }
        } else {
          values[name] = input.value;
        }
      }
      ok.disabled = true;
      error.textContent = "";
      try {
        await submit(values);
        close();
      } catch (err) {
        error.textContent = `${err.error || "Error"}: ${err.message}`;
        ok.disabled = false;
      }
    });
    const overlay = h("div.overlay", { onclick: (ev) => { if (ev.target === overlay) close(); } }, form);
    document.body.appendChild(overlay);
    document.addEventListener("keydown", onKey);
    const first = Object.values(inputs)[0];
    (first ? first.input : ok).focus();
  }

  return { h, append, badge, when, duration, json, toast, dialog };
})();
