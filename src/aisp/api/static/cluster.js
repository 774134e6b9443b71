// The Cluster section: the Ray nodes (alive, resources) and which streams and tasks run on each.
// Shown only when the server runs on a cluster: the live summary's "cluster" is null otherwise.

import { $, $$, el, fmt, setText, statePill } from "./ui.js";

export function render(cluster) {
  const section = $("#cluster");
  section.hidden = !cluster;
  if (!cluster) return;
  const nodes = cluster.nodes || [];
  const alive = nodes.filter((n) => n.alive).length;
  const bits = [`${alive} of ${nodes.length} node${nodes.length === 1 ? "" : "s"} alive`];
  if (cluster.state && cluster.state !== "done") bits.push(`connecting: ${cluster.state}`);
  if (cluster.frames) {
    bits.push(cluster.frames.path === "serve"
      ? `frames API on Ray Serve, ${cluster.frames.replicas} replica${cluster.frames.replicas === 1 ? "" : "s"}`
      : "frames API in this process");
  }
  setText($("#cluster-summary"), bits.join(" · "));

  const tbody = $("#cluster-table tbody");
  const seen = new Set();
  for (const n of nodes) {
    seen.add(n.node_id);
    let row = tbody.querySelector(`tr[data-node-id="${CSS.escape(n.node_id)}"]`);
    if (!row) {
      row = el(
        "tr", { dataset: { nodeId: n.node_id } },
        el("td", { class: "name" }), el("td", { class: "address muted" }), el("td", { class: "state" }),
        el("td", { class: "num cpu" }), el("td", { class: "num slots" }), el("td", { class: "num mem" }),
        el("td", { class: "streams" }), el("td", { class: "tasks" }),
      );
      tbody.append(row);
    }
    update(row, n);
  }
  for (const row of $$("tr[data-node-id]", tbody)) if (!seen.has(row.dataset.nodeId)) row.remove();
}

function update(row, n) {
  const name = row.querySelector(".name");
  setText(name, n.node_id.slice(0, 12) + (n.is_head ? " (head)" : ""));
  name.title = n.node_id;
  setText(row.querySelector(".address"), n.address || "");
  const state = n.alive ? "alive" : "dead";
  row.classList.toggle("dead", !n.alive);
  const st = row.querySelector(".state");
  if (st.dataset.state !== state) {
    st.dataset.state = state;
    st.replaceChildren(el("span", { class: statePill(n.alive ? "running" : "failed"), text: state }));
  }
  const res = n.resources || {};
  setText(row.querySelector(".cpu"), fmt.num(res.CPU, 0));
  setText(row.querySelector(".slots"), fmt.num(res.stream_slot, 0));
  setText(row.querySelector(".mem"), Number.isFinite(res.memory) ? fmt.mb(res.memory / 2 ** 20) : "–");
  chips(row.querySelector(".streams"), n.streams || [], "stream");
  chips(row.querySelector(".tasks"), (n.tasks || []).map((t) => t.slice(0, 10)), "task");
}

function chips(cell, ids, kind) {
  const key = ids.join(",");
  if (cell.dataset.key === key) return;
  cell.dataset.key = key;
  cell.replaceChildren(
    ids.length
      ? el("div", { class: "node-chips" }, ...ids.map((id) => el("span", { class: "node-chip", dataset: { [kind]: id }, text: id })))
      : el("span", { class: "muted", text: "–" }),
  );
}
