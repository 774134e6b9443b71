// The Tasks section: submit a batch job over a video file or URL, watch its progress, download
// its results (events JSONL, annotated video), cancel or retry it.

import { api, download } from "./api.js";
import { $, $$, el, fmt, setText, statePill, toast } from "./ui.js";

const ACTIVE = new Set(["queued", "running"]);
const RETRYABLE = new Set(["failed", "cancelled", "interrupted"]);
let app;

export function init(appState) {
  app = appState;
  $("#task-form").addEventListener("submit", onSubmit);
  $("#tasks-table").addEventListener("click", onClick);
}

export function render(list) {
  const tbody = $("#tasks-table tbody");
  const seen = new Set();
  let prev = null;
  for (const t of list) { // newest first, as the server sends them
    seen.add(t.id);
    let row = tbody.querySelector(`tr[data-task-id="${CSS.escape(t.id)}"]`);
    if (!row) row = buildRow(t);
    // Keep the sorted order without rebuilding rows.
    if (prev ? prev.nextElementSibling !== row : tbody.firstElementChild !== row) {
      if (prev) prev.after(row);
      else tbody.prepend(row);
    }
    update(row, t);
    prev = row;
  }
  for (const row of $$("tr[data-task-id]", tbody)) if (!seen.has(row.dataset.taskId)) row.remove();
  const empty = tbody.querySelector("tr.empty");
  if (list.length && empty) empty.remove();
  if (!list.length && !empty) {
    tbody.append(el("tr", { class: "empty" }, el("td", { colspan: 9, class: "muted", text: "No tasks yet." })));
  }
}

function buildRow(t) {
  return el(
    "tr", { dataset: { taskId: t.id } },
    el("td", { class: "name", text: t.id.slice(0, 10), title: t.id }),
    el("td", { class: "source" }),
    el("td", { class: "models muted" }),
    el("td", { class: "state" }),
    el("td", {}, el("div", { class: "progress", dataset: { progress: "0" } },
      el("div", { class: "bar" }), el("span", { class: "pct", text: "–" }))),
    el("td", { class: "num fps" }),
    el("td", { class: "num eta" }),
    el("td", { class: "downloads" }),
    el("td", { class: "actions-cell admin-only" }),
  );
}

function update(row, t) {
  const src = row.querySelector(".source");
  setText(src, t.source.split("/").pop() || t.source);
  src.title = t.source;
  setText(row.querySelector(".models"), (t.models || []).join(", "));
  const st = row.querySelector(".state");
  if (st.dataset.state !== t.state) {
    st.dataset.state = t.state;
    st.replaceChildren(el("span", { class: statePill(t.state), text: t.state }));
  }
  st.title = t.error || "";

  const pct = Number.isFinite(t.progress) ? t.progress : null;
  const bar = row.querySelector(".progress");
  bar.dataset.progress = pct === null ? "" : String(Math.floor(pct));
  bar.classList.toggle("done", t.state === "completed");
  bar.classList.toggle("failed", t.state === "failed");
  bar.querySelector(".bar").style.width = (pct ?? 0) + "%";
  const label = pct === null ? (ACTIVE.has(t.state) ? "starting" : "–") : Math.floor(pct) + "%";
  setText(bar.querySelector(".pct"), label);
  bar.title = t.frames_total ? `${t.frames_done} / ${t.frames_total} frames` : `${t.frames_done || 0} frames`;

  setText(row.querySelector(".fps"), t.state === "running" || t.state === "completed" ? fmt.num(t.fps) : "–");
  setText(row.querySelector(".eta"), t.state === "running" ? fmt.duration(t.eta_s) : "–");

  const dl = t.downloads || {};
  const dlKey = JSON.stringify(dl);
  const dlCell = row.querySelector(".downloads");
  if (dlCell.dataset.key !== dlKey) {
    dlCell.dataset.key = dlKey;
    const links = [];
    if (dl.events) links.push(el("button", { class: "link-btn", type: "button", text: "events.jsonl",
      dataset: { dl: dl.events, file: `${t.id}-events.jsonl` } }));
    if (dl.video) links.push(el("button", { class: "link-btn", type: "button", text: "video",
      dataset: { dl: dl.video, file: `${t.id}-annotated.mp4` } }));
    dlCell.replaceChildren(...(links.length ? links : [el("span", { class: "muted", text: "–" })]));
  }

  const action = ACTIVE.has(t.state) ? "cancel" : RETRYABLE.has(t.state) ? "retry" : "";
  const cell = row.querySelector(".actions-cell");
  if (cell.dataset.action !== action) {
    cell.dataset.action = action;
    cell.replaceChildren(action
      ? el("button", { class: "btn btn-small" + (action === "cancel" ? " btn-danger" : ""), type: "button",
          text: action === "cancel" ? "Cancel" : "Retry", dataset: { action } })
      : "");
  }
}

async function onClick(ev) {
  const dlBtn = ev.target.closest("button[data-dl]");
  if (dlBtn) {
    try {
      await download(dlBtn.dataset.dl, dlBtn.dataset.file);
    } catch (err) {
      toast("Download: " + err.message, "error");
    }
    return;
  }
  const btn = ev.target.closest("button[data-action]");
  if (!btn) return;
  const id = btn.closest("tr").dataset.taskId;
  btn.disabled = true;
  try {
    await api(`/api/tasks/${encodeURIComponent(id)}/${btn.dataset.action}`, { method: "POST" });
    toast(`${btn.dataset.action} ${id}: done`, "ok");
  } catch (err) {
    toast(`${btn.dataset.action} ${id}: ${err.message}`, "error");
    btn.disabled = false;
  }
}

async function onSubmit(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const data = new FormData(form);
  const models = app.pickerValues(form.querySelector("[data-picker]"));
  if (!models.length) return toast("Pick at least one model for the task.", "error");
  const body = { source: String(data.get("source")).trim(), models, video: data.get("video") === "on" };
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const created = await api("/api/tasks", { method: "POST", body });
    toast(`Task ${created.id || ""} submitted`, "ok");
    form.querySelector("input[name=source]").value = "";
  } catch (err) {
    toast("Submit task: " + err.message, "error");
  } finally {
    submit.disabled = false;
  }
}
