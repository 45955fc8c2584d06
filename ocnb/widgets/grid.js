// FleetGrid: one row per agent, sortable, filterable, paged; refreshed by the kernel.
// Loaded after arrow.js (grid.py joins the two files), which provides decodeArrow.
const STATUSES = ["working", "idle", "error", "offline"];
const LABELS = {
  agent: "agent", status: "status", current: "doing now", model: "model",
  last_activity: "last activity", sessions: "sessions", tokens_today: "tokens today",
  cost_today: "cost today", activity: "last 30 min",
};
const NUMERIC = new Set(["sessions", "tokens_today", "cost_today"]);
const SORT_KEYS = {
  agent: (r) => (r.name || r.agent_id || "").toLowerCase(),
  status: (r) => STATUSES.indexOf(r.status),
  current: (r) => r.current_session || "",
  model: (r) => r.model || "",
  last_activity: (r) => r.last_activity_ms || 0,
  sessions: (r) => r.sessions || 0,
  tokens_today: (r) => r.tokens_today || 0,
  cost_today: (r) => r.cost_today || 0,
  activity: (r) => (r.activity || []).reduce((a, b) => a + b, 0),
};

// The last phase or chat state of a run, as a person would say it.
const PHASES = {
  start: "starting", preparing_workspace: "preparing its workspace", model: "waiting for the model",
  fallback_step: "trying a fallback model", status: "working", delta: "writing a reply",
  finishing: "finishing", final: "replied", end: "finished", error: "failed", aborted: "aborted",
};

function phase(word) {
  return PHASES[word] || String(word).replace(/_/g, " ");
}

function decode(bytes) {
  return bytes && bytes.byteLength ? decodeArrow(bytes).rows : [];
}

function ago(ms) {
  if (!ms) return "—";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function sparkline(values) {
  const max = Math.max(1, ...values);
  const w = 90, h = 18, step = w / Math.max(1, values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(h - (v / max) * h).toFixed(1)}`);
  return `<svg class="ocnb-spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><polyline points="${points.join(" ")}"/></svg>`;
}

function escape(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function cell(column, row) {
  switch (column) {
    case "agent": return `<span class="ocnb-emoji">${escape(row.emoji || "🤖")}</span> ${escape(row.name || row.agent_id)}`;
    case "status": return `<span class="ocnb-chip ocnb-${escape(row.status)}" data-status="${escape(row.status)}">${escape(row.status)}</span>`;
    case "current": return row.current_session
      ? `${escape(row.current_session)}${row.run_phase ? ` <span class="ocnb-phase">${escape(phase(row.run_phase))}</span>` : ""}`
      : (row.last_run_error ? `<span class="ocnb-error-text" title="${escape(row.last_run_error)}">${escape(row.last_run_error.slice(0, 60))}</span>` : "");
    case "model": return `<span title="${escape(row.model || "")}">${escape(row.model || "")}</span>`;
    case "last_activity": return `<span class="ocnb-ago" data-ms="${row.last_activity_ms || 0}">${ago(row.last_activity_ms)}</span>`;
    case "sessions": return String(row.sessions ?? 0);
    case "tokens_today": return (row.tokens_today ?? 0).toLocaleString();
    case "cost_today": return `$${(row.cost_today ?? 0).toFixed(4)}`;
    case "activity": return sparkline(row.activity || []);
    default: return "";
  }
}

function render({ model, el }) {
  const state = { sort: "agent", descending: false, text: "", status: "", page: 0 };
  let previous = new Map();
  const root = document.createElement("div");
  root.className = "ocnb-grid";
  root.innerHTML = `
    <div class="ocnb-toolbar">
      <input class="ocnb-filter" type="search" placeholder="filter agents…" aria-label="filter agents">
      <select class="ocnb-status-filter" aria-label="status filter">
        <option value="">all statuses</option>${STATUSES.map((s) => `<option value="${s}">${s}</option>`).join("")}
      </select>
      <span class="ocnb-count"></span>
      <span class="ocnb-pager"><button class="ocnb-prev" aria-label="previous page">‹</button><span class="ocnb-page"></span><button class="ocnb-next" aria-label="next page">›</button></span>
    </div>
    <div class="ocnb-scroll"><table class="ocnb-agents"><thead></thead><tbody></tbody></table></div>
    <div class="ocnb-statusbar"></div>`;
  el.appendChild(root);
  const thead = root.querySelector("thead"), tbody = root.querySelector("tbody");

  function applyTheme() {
    const theme = model.get("theme");
    root.dataset.theme = theme === "auto" ? (document.body.dataset.jpThemeLight === "false" ? "dark" : "light") : theme;
  }

  function visibleRows() {
    const text = state.text.toLowerCase();
    let rows = decode(model.get("_agents")).filter((r) =>
      (!state.status || r.status === state.status) &&
      (!text || `${r.agent_id} ${r.name} ${r.model} ${r.current_session}`.toLowerCase().includes(text)));
    const key = SORT_KEYS[state.sort] || SORT_KEYS.agent;
    rows.sort((a, b) => {
      const ka = key(a), kb = key(b);
      const order = ka < kb ? -1 : ka > kb ? 1 : 0;
      return state.descending ? -order : order;
    });
    const gateways = new Set(rows.map((r) => r.gateway));
    if (gateways.size > 1) rows.sort((a, b) => (a.gateway < b.gateway ? -1 : a.gateway > b.gateway ? 1 : 0));
    return { rows, grouped: gateways.size > 1 };
  }

  function draw() {
    applyTheme();
    const columns = model.get("columns");
    thead.innerHTML = `<tr>${columns.map((c) => `<th data-column="${c}" class="${state.sort === c ? (state.descending ? "ocnb-desc" : "ocnb-asc") : ""}${NUMERIC.has(c) ? " ocnb-number" : ""}">${LABELS[c] || c}</th>`).join("")}</tr>`;
    const { rows, grouped } = visibleRows();
    const size = model.get("page_size");
    const pages = Math.max(1, Math.ceil(rows.length / size));
    state.page = Math.min(state.page, pages - 1);
    const page = rows.slice(state.page * size, (state.page + 1) * size);
    const selected = model.get("selected");
    const next = new Map();
    let lastGateway = null, html = "";
    for (const row of page) {
      if (grouped && row.gateway !== lastGateway) {
        html += `<tr class="ocnb-group"><td colspan="${columns.length}">${escape(row.gateway)}</td></tr>`;
        lastGateway = row.gateway;
      }
      const id = `${row.gateway}/${row.agent_id}`;
      const cells = columns.map((c) => cell(c, row));
      const before = previous.get(id);
      next.set(id, cells);
      html += `<tr data-agent="${escape(row.agent_id)}" class="${row.agent_id === selected ? "ocnb-selected" : ""}">${cells
        .map((content, i) => {
          const flash = before && before[i] !== content && columns[i] !== "last_activity" ? "ocnb-flash" : "";
          return `<td class="${flash}${NUMERIC.has(columns[i]) ? " ocnb-number" : ""}">${content}</td>`;
        })
        .join("")}</tr>`;
    }
    tbody.innerHTML = html;
    previous = next;
    root.querySelector(".ocnb-count").textContent = `${rows.length} agents`;
    root.querySelector(".ocnb-page").textContent = `${state.page + 1}/${pages}`;
    drawStatus();
  }

  function drawStatus() {
    const parts = model.get("_gateways").map((g) => {
      const age = g.last_event_ms ? ago(g.last_event_ms) : "no events yet";
      return `<span class="ocnb-gw ocnb-gw-${escape(g.status)}" data-status="${escape(g.status)}">${escape(g.name)}: ${escape(g.status)}${g.protocol ? ` · v${g.protocol}` : ""}${g.server_version ? ` · ${escape(g.server_version)}` : ""} · last event ${age} · ${g.reconnects} reconnects${g.error ? ` · ${escape(g.error)}` : ""}</span>`;
    });
    for (const a of model.get("_alerts")) {
      parts.push(`<span class="ocnb-alert" title="firing since ${escape(new Date(a.fired_ms).toISOString())}">⚠ ${escape(a.alert)}${a.subject === "fleet" ? "" : `: ${escape(a.subject)}`}</span>`);
    }
    root.querySelector(".ocnb-statusbar").innerHTML = parts.join("");
  }

  thead.addEventListener("click", (e) => {
    const column = e.target.closest("th")?.dataset.column;
    if (!column) return;
    state.descending = state.sort === column ? !state.descending : false;
    state.sort = column;
    draw();
  });
  tbody.addEventListener("click", (e) => {
    const agent = e.target.closest("tr")?.dataset.agent;
    if (!agent) return;
    model.set("selected", agent);
    model.save_changes();
  });
  root.querySelector(".ocnb-filter").addEventListener("input", (e) => { state.text = e.target.value; state.page = 0; draw(); });
  root.querySelector(".ocnb-status-filter").addEventListener("change", (e) => { state.status = e.target.value; state.page = 0; draw(); });
  root.querySelector(".ocnb-prev").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); draw(); });
  root.querySelector(".ocnb-next").addEventListener("click", () => { state.page += 1; draw(); });

  model.on("change:_agents", draw);
  model.on("change:_gateways", drawStatus);
  model.on("change:_alerts", drawStatus);
  model.on("change:selected", draw);
  model.on("change:columns", draw);
  model.on("change:theme", draw);
  const ticker = setInterval(() => {
    for (const span of root.querySelectorAll(".ocnb-ago")) span.textContent = ago(Number(span.dataset.ms));
    drawStatus();
  }, 1000);
  draw();
  return () => clearInterval(ticker);
}

export default { render };
