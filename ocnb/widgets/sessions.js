// SessionTable: the selected agent's sessions, newest first.
// Loaded after arrow.js (grid.py joins the two files), which provides decodeArrow.
function decode(bytes) {
  return bytes && bytes.byteLength ? decodeArrow(bytes).rows : [];
}

function escape(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "ocnb-grid ocnb-sessions";
  el.appendChild(root);
  function draw() {
    const agent = model.get("agent");
    if (!agent) { root.innerHTML = `<p class="ocnb-hint">Click an agent in the grid to see its sessions.</p>`; return; }
    const rows = decode(model.get("_sessions"));
    root.innerHTML = `<div class="ocnb-toolbar"><b>${escape(agent)}</b> · ${rows.length} sessions</div>
      <table><thead><tr><th>session</th><th>status</th><th>model</th><th>tokens in/out</th><th>cost</th><th>updated</th></tr></thead>
      <tbody>${rows.map((r) => `<tr><td>${escape(r.session_key)}${r.label ? ` <i>${escape(r.label)}</i>` : ""}</td>
        <td><span class="ocnb-chip ocnb-${r.has_active_run ? "working" : r.status === "failed" ? "error" : "idle"}">${escape(r.has_active_run ? "running" : r.status || "new")}</span></td>
        <td>${escape(r.model)}</td><td>${r.input_tokens ?? "—"} / ${r.output_tokens ?? "—"}</td>
        <td>${r.estimated_cost_usd == null ? "—" : `$${r.estimated_cost_usd.toFixed(4)}`}</td>
        <td>${r.updated_ms ? new Date(r.updated_ms).toLocaleTimeString() : "—"}</td></tr>`).join("")}</tbody></table>`;
  }
  model.on("change:_sessions", draw);
  model.on("change:agent", draw);
  draw();
}

export default { render };
