// Small DOM and formatting helpers shared by the dashboard modules.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// el("td", {class: "num", text: "3"}, child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function setText(node, text) {
  const s = String(text);
  if (node && node.textContent !== s) node.textContent = s;
}

export function toast(message, kind = "info", ms = 4500) {
  const box = document.getElementById("toasts");
  const t = el("div", { class: "toast " + kind, role: kind === "error" ? "alert" : "status", text: message });
  box.append(t);
  setTimeout(() => t.remove(), ms);
}

export const fmt = {
  num(v, digits = 1) {
    return Number.isFinite(v) ? v.toFixed(digits) : "–";
  },
  int(v) {
    return Number.isFinite(v) ? Math.round(v).toLocaleString() : "–";
  },
  pct(v) {
    return Number.isFinite(v) ? (v * 100).toFixed(1) + "%" : "–";
  },
  ms(v) {
    if (!Number.isFinite(v)) return "–";
    return v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(v < 10 ? 1 : 0) + " ms";
  },
  bytes(v) {
    if (!Number.isFinite(v) || v <= 0) return "–";
    const units = ["B", "KB", "MB", "GB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return v.toFixed(i ? 1 : 0) + " " + units[i];
  },
  mb(v) {
    if (!Number.isFinite(v)) return "–";
    if (v >= 1024) return (v / 1024).toFixed(1) + " GB";
    return v.toFixed(v < 100 ? 1 : 0) + " MB";
  },
  duration(s) {
    if (!Number.isFinite(s)) return "–";
    s = Math.max(0, Math.round(s));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  },
};

// Pill class for a state name.
export function statePill(state) {
  const good = ["running", "completed", "loaded", "ready", "warm", "live"];
  const warn = ["pending", "starting", "reconnecting", "queued", "connecting", "interrupted", "cancelled", "loading"];
  const bad = ["failed", "error", "offline", "missing_dependency"];
  if (good.includes(state)) return "pill pill-ok";
  if (warn.includes(state)) return "pill pill-warn";
  if (bad.includes(state)) return "pill pill-err";
  return "pill pill-muted";
}
