// 电子证照用证率 chart: reads GET /api/v1/indicators/usage-rate?by=... and draws one horizontal bar per group as
// inline SVG (built with DOM calls: no innerHTML of server data, no library), with the plan target as a dashed line.
const SVG = "http://www.w3.org/2000/svg";
const state = { by: "agency", lang: "zh" };

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

function pct(rate) {
  return rate === null ? "—" : `${(rate * 100).toFixed(1)}%`;
}

export function drawChart(container, data) {
  container.replaceChildren();
  // one group per row: its label on a line of its own, then the bar and its value (long names never overlap)
  const rowH = 44, barW = 560, pad = 8;
  const height = Math.max(1, data.groups.length) * rowH + 2 * pad + 16;
  const svg = el("svg", { viewBox: `0 0 ${barW + 120} ${height}`, "data-groups": data.groups.length });
  data.groups.forEach((g, i) => {
    const y = pad + i * rowH;
    const label = (g.name && g.name !== g.key) ? `${g.name} (${g.key})` : g.key;
    svg.append(el("text", { x: 0, y: y + 13 }, label));
    const w = Math.round((g.rate ?? 0) * barW);
    const below = g.rate === null || g.rate < data.target;
    svg.append(el("rect", { class: "track", x: 0, y: y + 18, width: barW, height: 18 }));
    svg.append(el("rect", { class: below ? "bar below" : "bar", x: 0, y: y + 18, width: w, height: 18,
                            "data-key": g.key, "data-rate": g.rate ?? "" }));
    svg.append(el("text", { x: barW + 6, y: y + 32 }, `${pct(g.rate)} (${g.used}/${g.issued})`));
  });
  const tx = Math.round(data.target * barW);
  svg.append(el("line", { class: "target", x1: tx, x2: tx, y1: pad + 14, y2: height - 14 }));
  svg.append(el("text", { x: tx - 30, y: height - 2 }, `${state.lang === "en" ? "target" : "目标"} ${pct(data.target)}`));
  container.append(svg);
}

function fillTable(tbody, data) {
  tbody.replaceChildren();
  for (const g of data.groups) {
    const tr = document.createElement("tr");
    const cells = [(g.name && g.name !== g.key) ? `${g.name} (${g.key})` : g.key, g.issued, g.used, pct(g.rate)];
    cells.forEach((v, i) => {
      const td = document.createElement("td");
      td.textContent = String(v);
      if (i > 0) td.className = "num";
      tr.append(td);
    });
    tbody.append(tr);
  }
}

async function load() {
  const error = document.getElementById("error");
  error.hidden = true;
  try {
    const resp = await fetch(`/api/v1/indicators/usage-rate?by=${encodeURIComponent(state.by)}`,
                             { headers: { Accept: "application/json" } });
    const data = await resp.json();
    if (!resp.ok) throw new Error(data?.error?.message || `HTTP ${resp.status}`);
    document.getElementById("target").textContent = pct(data.target);
    const t = data.total;
    document.getElementById("total").textContent = state.lang === "en"
      ? `Overall ${pct(t.rate)}: ${t.used} of ${t.issued} certificates used`
      : `总体用证率 ${pct(t.rate)}：已签发 ${t.issued} 件，已使用 ${t.used} 件`;
    drawChart(document.getElementById("chart"), data);
    fillTable(document.querySelector("#table tbody"), data);
    document.body.dataset.loaded = state.by;
  } catch (exc) {
    error.textContent = `无法读取用证率 / cannot read the usage rate: ${exc.message}`;
    error.hidden = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => {
      state.by = tab.dataset.by;
      for (const t of document.querySelectorAll(".tabs button")) t.setAttribute("aria-selected", String(t === tab));
      load();
    });
  }
  document.getElementById("lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    document.documentElement.lang = state.lang === "en" ? "en" : "zh-CN";
    document.getElementById("lang").textContent = state.lang === "en" ? "中文" : "English";
    load();
  });
  load();
});
