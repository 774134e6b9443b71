// AISP dashboard entry point: sign-in, the live feed, and the System and Cache sections.
// Streams, tasks and history live in their own modules.

import { api, auth, download, LiveFeed } from "./api.js";
import { LineChart } from "./linechart.js";
import { $, $$, el, fmt, setText, statePill, toast } from "./ui.js";
import * as streams from "./streams.js";
import * as tasks from "./tasks.js";
import * as history from "./history.js";
import * as cluster from "./cluster.js";

const body = document.body;
const app = {
  role: null,
  isAdmin: false,
  catalogue: [], // GET /api/models
  feed: null,
  hitChart: null,
  timers: [],
  lastCache: null,
};
window.aisp = app; // handy in the browser console; tests read nothing from it

// --- sign-in ----------------------------------------------------------------------------

async function boot() {
  $("#login-form").addEventListener("submit", onLogin);
  $("#signout").addEventListener("click", signOut);
  if (body.dataset.auth === "off") return whoami("");
  if (auth.key) return whoami(auth.key);
  showLogin("");
}

async function onLogin(ev) {
  ev.preventDefault();
  const key = $("#login-key").value.trim();
  if (!key) return showLogin("Enter an API key.");
  await whoami(key);
}

async function whoami(key) {
  try {
    const who = await api("/api/auth/whoami", { key });
    if (key) auth.key = key;
    start(who.role || "admin", who.auth || body.dataset.auth);
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      auth.key = "";
      showLogin(key ? "That key was refused: " + err.message : "");
    } else if (err.status === 503) {
      showLogin("The server is still starting; retrying…");
      setTimeout(() => whoami(key), 1500);
    } else {
      showLogin("Cannot reach the server: " + err.message);
    }
  }
}

function showLogin(message) {
  body.classList.remove("booting");
  body.classList.add("signed-out"); // periodic refreshes pause while no key is accepted
  $("#app").hidden = true;
  $("#login").hidden = false;
  const e = $("#login-error");
  e.textContent = message;
  e.hidden = !message;
  $("#login-key").focus();
}

function signOut() {
  auth.key = "";
  location.reload();
}

// --- start ------------------------------------------------------------------------------

function start(role, authMode) {
  app.role = role;
  app.isAdmin = role === "admin";
  body.classList.toggle("role-viewer", !app.isAdmin);
  body.classList.toggle("role-admin", app.isAdmin);
  body.classList.remove("booting", "signed-out");
  $("#conn").hidden = false;
  const pill = $("#role");
  pill.hidden = false;
  pill.className = app.isAdmin ? "pill pill-info" : "pill pill-muted";
  pill.textContent = authMode === "off" ? "auth off" : role;
  $("#signout").hidden = authMode === "off";
  $("#login").hidden = true;
  $("#app").hidden = false;
  if (app.feed) {
    // Signed in again (the key was refused meanwhile): the sections are wired; reconnect.
    refreshCatalogue();
    app.feed.start();
    return;
  }

  app.hitChart = new LineChart($("#hit-rate-chart"), {
    min: 0, max: 1, maxPoints: 600, format: (v) => Math.round(v * 100) + "%",
    empty: "collecting hit-rate samples",
  });
  app.cpuChart = new LineChart($("#cpu-chart"), {
    min: 0, maxPoints: 300, color: "#ff7b72", fill: "rgba(255, 123, 114, 0.12)",
    format: (v) => v.toFixed(0) + "%", empty: "collecting CPU samples",
  });
  wireCacheActions();
  streams.init(app);
  tasks.init(app);
  history.init(app);

  refreshCatalogue();
  app.timers.push(setInterval(refreshCatalogue, 15000));
  app.feed = new LiveFeed("/ws/live", { onMessage: onSummary, onState: onFeedState });
  app.feed.start();
}

function onFeedState(state) {
  if (state === "live" && app.lostFeed) streams.resetViews();
  if (state === "offline") app.lostFeed = true;
  if (state === "live") app.lostFeed = false;
  const c = $("#conn");
  c.className = statePill(state);
  c.textContent = state;
  if (state === "unauthorized") {
    app.feed.stop();
    auth.key = "";
    showLogin("The server no longer accepts this key.");
  }
}

export async function refreshCatalogue() {
  if (body.classList.contains("signed-out")) return;
  try {
    const data = await api("/api/models");
    app.catalogue = Array.isArray(data) ? data : data.models || [];
    renderPickers();
    if (app.lastCache) renderCache(app.lastCache, false);
  } catch (err) {
    toast("Model list: " + err.message, "error");
  }
}
app.refreshCatalogue = refreshCatalogue;

// One summary per second from /ws/live.
function onSummary(msg) {
  if (msg.type !== "summary") return;
  renderSystem(msg.system || {}, msg.alerts || []);
  app.cpuChart.push(msg.time || Date.now() / 1000, msg.system ? msg.system.cpu_percent : null);
  renderCache(msg.cache || {}, true, msg.time);
  streams.render(msg.streams || []);
  tasks.render(msg.tasks || []);
  cluster.render(msg.cluster ?? null);
}

// --- system -----------------------------------------------------------------------------

function renderSystem(sys, alerts) {
  const warm = $("#sys-warm");
  setText(warm, sys.warm ? "warm" : sys.ready === false ? "warming" : "cold");
  warm.className = "value " + (sys.warm ? "ok-text" : "warn-text");
  setText($("#sys-uptime"), fmt.duration(sys.uptime_s));
  setText($("#sys-cpu"), Number.isFinite(sys.cpu_percent) ? sys.cpu_percent.toFixed(0) + "%" : "–");
  setText($("#sys-rss"), fmt.mb(sys.rss_mb));
  const bits = [];
  if (sys.version) bits.push("v" + sys.version);
  if (sys.pending && sys.pending.length) bits.push("pending: " + sys.pending.join(", "));
  const warmed = [...new Set((sys.warmed_models || []).map((n) => n.split("#")[0]))];
  if (warmed.length) bits.push("warmed: " + warmed.join(", "));
  setText($("#sys-detail"), bits.join(" · "));
  const comps = sys.components || {};
  const compKey = JSON.stringify(comps);
  const box = $("#sys-components");
  if (box.dataset.key !== compKey) {
    box.dataset.key = compKey;
    box.replaceChildren(...Object.entries(comps).map(([name, st]) =>
      el("span", { class: statePill(st === "done" ? "ready" : st), text: `${name}: ${st}` })));
  }

  const list = $("#alerts");
  const key = JSON.stringify(alerts);
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(
    ...(alerts.length
      ? alerts.map((a) => el("li", { class: a.level || "warning", text: `${a.source}: ${a.message}` }))
      : [el("li", { class: "muted", text: "No alerts." })]),
  );
}

// --- cache ------------------------------------------------------------------------------

function renderCache(cache, live, time) {
  app.lastCache = cache;
  if (live) app.hitChart.push(time || Date.now() / 1000, cache.recent_hit_rate ?? cache.hit_rate ?? null);
  setText($("#cache-hit-rate"), fmt.pct(cache.hit_rate));
  setText($("#cache-hm"), `${fmt.int(cache.hits)} / ${fmt.int(cache.misses)}`);
  setText($("#cache-size"), Number.isFinite(cache.size) ? `${cache.size} / ${cache.max_size ?? "–"}` : "–");
  setText(
    $("#cache-mem"),
    Number.isFinite(cache.memory_mb) ? `${fmt.mb(cache.memory_mb)} / ${fmt.mb(cache.max_memory_mb)}` : "–",
  );

  // Rows: every catalogue model, plus cached keys the catalogue does not name (per-worker instances).
  const entries = new Map((cache.models || []).map((m) => [m.name, m]));
  const names = app.catalogue.map((m) => m.name);
  for (const n of entries.keys()) if (!names.includes(n)) names.push(n);
  const info = new Map(app.catalogue.map((m) => [m.name, m]));
  const tbody = $("#models-table tbody");
  const seen = new Set();
  for (const name of names) {
    seen.add(name);
    const base = info.get(name) || info.get(name.split("#")[0]) || {};
    const entry = entries.get(name);
    const state = entry ? "loaded" : base.status === "loaded" ? "available" : base.status || "available";
    let row = tbody.querySelector(`tr[data-model="${CSS.escape(name)}"]`);
    if (!row) {
      row = el(
        "tr", { dataset: { model: name } },
        el("td", { class: "name", text: name }), el("td", { class: "backend muted" }),
        el("td", { class: "state" }), el("td", { class: "num hits" }), el("td", { class: "num misses" }),
        el("td", { class: "num load" }), el("td", { class: "num size" }), el("td", { class: "num ttl" }),
        el("td", { class: "actions-cell admin-only" }),
      );
      tbody.append(row);
    }
    setText(row.querySelector(".backend"), base.backend || "");
    row.querySelector(".backend").title = base.description || base.extra || "";
    const st = row.querySelector(".state");
    if (st.dataset.state !== state) {
      st.dataset.state = state;
      st.replaceChildren(el("span", { class: statePill(state), text: state.replace("_", " ") }));
      if (state === "missing_dependency" && base.extra) st.title = `pip install 'aisp[${base.extra}]'`;
    }
    setText(row.querySelector(".hits"), entry ? fmt.int(entry.hits) : "–");
    setText(row.querySelector(".misses"), entry ? fmt.int(entry.misses) : "–");
    setText(row.querySelector(".load"), fmt.ms(entry ? entry.load_ms : base.load_ms));
    setText(row.querySelector(".size"), fmt.bytes(entry ? entry.size_bytes : base.size_bytes));
    setText(
      row.querySelector(".ttl"),
      entry ? (entry.ttl_left_s === null || entry.ttl_left_s === undefined ? "never" : fmt.duration(entry.ttl_left_s)) : "–",
    );
    const cell = row.querySelector(".actions-cell");
    // A name like "onnx:<path>" is a pattern for a family of models, not one to load as is.
    const action = entry ? "unload" : state === "available" && !isPattern(name) ? "load" : "";
    if (cell.dataset.action !== action) {
      cell.dataset.action = action;
      cell.replaceChildren(
        action
          ? el("button", {
              class: "btn btn-small" + (action === "unload" ? " btn-danger" : ""), type: "button",
              text: action === "load" ? "Load" : "Unload", dataset: { action, model: name },
            })
          : "",
      );
    }
  }
  for (const row of $$("tr[data-model]", tbody)) if (!seen.has(row.dataset.model)) row.remove();
}

function wireCacheActions() {
  $("#models-table").addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button[data-action]");
    if (!btn) return;
    const { action, model } = btn.dataset;
    btn.disabled = true;
    try {
      if (action === "load") {
        btn.textContent = "Loading…";
        await api(`/api/models/${encodeURIComponent(model)}/load`, { method: "POST" });
        toast(`Loaded ${model}`, "ok");
      } else {
        await api(`/api/models/${encodeURIComponent(model)}`, { method: "DELETE" });
        toast(`Unloaded ${model}`, "ok");
      }
      await refreshCatalogue();
    } catch (err) {
      toast(`${action} ${model}: ${err.message}`, "error");
      btn.disabled = false;
      btn.textContent = action === "load" ? "Load" : "Unload";
    }
  });

  $("#prewarm-btn").addEventListener("click", async () => {
    const models = pickerValues($("#prewarm-models"));
    if (!models.length) return toast("Pick at least one model to prewarm.", "error");
    try {
      const r = await api("/api/models/prewarm", { method: "POST", body: { models } });
      const failed = Object.entries(r.failed || {});
      if (r.loaded && r.loaded.length) toast("Warm: " + r.loaded.join(", "), "ok");
      for (const [name, why] of failed) toast(`Prewarm ${name} failed: ${why}`, "error", 8000);
    } catch (err) {
      toast("Prewarm: " + err.message, "error");
    }
    refreshCatalogue();
  });

  $("#clear-cache-btn").addEventListener("click", async () => {
    if (!confirm("Unload every cached model?")) return;
    try {
      await api("/api/cache/clear", { method: "POST" });
      toast("Cache cleared", "ok");
      await refreshCatalogue();
    } catch (err) {
      toast("Clear cache: " + err.message, "error");
    }
  });

  for (const btn of $$("button[data-export]")) {
    btn.addEventListener("click", async () => {
      const format = btn.dataset.export;
      const ext = { json: "json", csv: "csv", prometheus: "prom" }[format];
      try {
        await download(`/api/cache/stats/export?format=${format}`, `aisp-cache-stats.${ext}`);
      } catch (err) {
        toast("Export: " + err.message, "error");
      }
    });
  }
}

// --- model pickers (checkbox chips) ---------------------------------------------------

export function renderPickers() {
  const usable = app.catalogue.filter((m) => m.status !== "missing_dependency" && !isPattern(m.name));
  for (const box of [$("#prewarm-models"), ...$$("[data-picker]")]) {
    const checked = new Set(pickerValues(box));
    const key = usable.map((m) => m.name).join(",");
    if (box.dataset.key === key) continue;
    box.dataset.key = key;
    box.replaceChildren(
      el("span", { class: "small muted", text: "Models" }),
      ...usable.map((m) =>
        el("label", { class: "chip", title: m.description || "" },
          el("input", { type: "checkbox", value: m.name, checked: checked.has(m.name) }),
          m.name),
      ),
    );
  }
}

function isPattern(name) {
  return name.includes("<");
}

export function pickerValues(box) {
  return $$("input[type=checkbox]:checked", box).map((i) => i.value);
}
app.pickerValues = pickerValues;

boot();
