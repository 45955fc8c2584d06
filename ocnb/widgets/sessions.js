// SessionTable: the selected agent's sessions, newest first.
// Loaded after arrow.js (grid.py joins the two files), which provides decodeArrow.
function decode(bytes) {
  return bytes && bytes.byteLength ? decodeArrow(bytes).rows : [];
}

function escape(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// A session's last update: the time today, else the day and time; the exact moment on hover.
function updated(ms) {
  if (!ms) return "—";
  const when = new Date(ms), today = new Date().toDateString() === when.toDateString();
  const text = today
    ? when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : when.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  return `<span title="${escape(when.toString())}">${escape(text)}</span>`;
}

function tokens(n) {
  return n == null ? "—" : Number(n).toLocaleString();
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
      <table><thead><tr><th>session</th><th>status</th><th>model</th><th class="ocnb-number">tokens in / out</th><th class="ocnb-number">cost</th><th>updated</th></tr></thead>
      <tbody>${rows.map((r) => `<tr><td>${escape(r.session_key)}${r.label ? ` <i>${escape(r.label)}</i>` : ""}</td>
        <td><span class="ocnb-chip ocnb-${r.has_active_run ? "working" : r.status === "failed" ? "error" : "idle"}">${escape(r.has_active_run ? "running" : r.status || "new")}</span></td>
        <td>${escape(r.model)}</td><td class="ocnb-number">${tokens(r.input_tokens)} / ${tokens(r.output_tokens)}</td>
        <td class="ocnb-number">${r.estimated_cost_usd == null ? "—" : `$${r.estimated_cost_usd.toFixed(4)}`}</td>
        <td>${updated(r.updated_ms)}</td></tr>`).join("")}</tbody></table>`;
  }
  model.on("change:_sessions", draw);
  model.on("change:agent", draw);
  draw();
}

export default { render };
