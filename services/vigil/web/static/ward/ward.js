// The ward overview: one row per patient, keyed by patient id, sickest first; live over SSE.
// Rows are keyed (a row is created once and then updated and moved, never appended twice) and
// only one refresh runs at a time: events arriving meanwhile ask for one more refresh after it.
// The old console cleared and appended from overlapping refresh() calls and showed duplicates.
"use strict";
(() => {
  const {$, el, api, age, live, act, resolveWithOutcome, start, VITALS} = window.Vigil;
  const rows = new Map();  // patient id -> {tr, cells, sparks}
  let inFlight = null, again = false, refreshes = 0;

  function refresh() {
    if (inFlight) { again = true; return inFlight; }
    inFlight = (async () => {
      try { do { again = false; await draw(); } while (again); }
      catch (error) { console.warn("refresh failed", error); }
      finally { inFlight = null; }
    })();
    return inFlight;
  }

  function query() {
    const q = new URLSearchParams();
    if ($("f-ward").value) q.set("ward", $("f-ward").value);
    if ($("f-severity").value) q.set("severity", $("f-severity").value);
    if ($("f-unack").checked) q.set("unacknowledged", "1");
    return q.toString();
  }

  async function draw() {
    const data = await (await api("/api/ward?" + query())).json();
    refreshes += 1;
    wards(data.wards);
    const body = $("rows"), seen = new Set();
    for (const row of data.rows) {
      seen.add(row.patient_id);
      const entry = rows.get(row.patient_id) || create(row.patient_id);
      update(entry, row, data.now);
      body.appendChild(entry.tr);  // moves the keyed row into acuity order
    }
    for (const [id, entry] of rows) if (!seen.has(id)) { entry.tr.remove(); for (const s of entry.sparks) s.chart && s.chart.destroy(); rows.delete(id); }
    $("count").textContent = `${data.rows.length} patient${data.rows.length === 1 ? "" : "s"}`;
  }

  function wards(list) {
    const select = $("f-ward");
    const have = new Set([...select.options].map(o => o.value));
    for (const w of list) if (!have.has(w)) select.append(el("option", {value: w, textContent: w}));
  }

  function create(id) {
    const cells = {};
    const tr = el("tr", {data: {patient: id}});
    for (const name of ["patient", "incident", "news2", "risk", "hr", "spo2", "rr", "temp", "sbp", "hrspark", "spo2spark", "monitoring", "actions"]) {
      cells[name] = el("td", {class: ["hr", "spo2", "rr", "temp", "sbp", "news2", "risk"].includes(name) ? "vital" : ""});
      tr.append(cells[name]);
    }
    const entry = {tr, cells, sparks: [{vital: "hr", cell: cells.hrspark}, {vital: "spo2", cell: cells.spo2spark}]};
    rows.set(id, entry);
    return entry;
  }

  function vitalCell(td, vital, latest) {
    const v = latest[vital];
    if (!v) { td.replaceChildren("–"); return; }
    const [, unit, digits] = VITALS[vital];
    let text = Number(v.value).toFixed(digits);
    if (vital === "sbp" && latest.dbp) text += "/" + Number(latest.dbp.value).toFixed(0);
    const value = el("span", {textContent: text + (unit && vital !== "sbp" ? " " + unit : "")});
    if (vital === "news2" && v.partial) { value.className = "partial"; value.title = "partial: not every parameter was observed"; value.textContent += "*"; }
    td.replaceChildren(value, el("span", {class: "age" + (v.age_s > 900 ? " old" : ""), textContent: age(v.age_s) + " ago"}));
  }

  function update(entry, row, now) {
    const c = entry.cells;
    c.patient.replaceChildren(el("a", {href: "/ward/patient?id=" + encodeURIComponent(row.patient_id),
                                       textContent: row.name || row.patient_id}),
                              el("span", {class: "age", textContent: row.patient_id + " · " + (row.ward || "")}));
    const inc = row.incident;
    c.incident.replaceChildren(...(inc ? [el("span", {class: "sev " + inc.severity, textContent: inc.severity}), " ",
      el("span", {textContent: inc.alerts.filter(a => a.active).map(a => a.kind).join(", ") || "(cleared)"}),
      el("span", {class: "age", textContent: inc.state === "open" ? `open ${age(now - inc.opened_t)}` : `acknowledged by ${inc.acknowledged_by}`})]
      : ["–"]));
    for (const v of ["news2", "risk", "hr", "spo2", "rr", "temp", "sbp"]) vitalCell(c[v], v, row.latest);
    const m = row.monitoring;
    c.monitoring.replaceChildren(...[el("span", {class: "mon " + m.state, textContent: m.state.replace("_", " "), title: m.words || ""}),
                                     m.words ? el("span", {class: "age", textContent: m.words}) : null].filter(Boolean));
    const buttons = [];
    if (inc && inc.state === "open") buttons.push(el("button", {type: "button", textContent: "Acknowledge", onclick: async () => { await act(inc.incident_id, "acknowledge"); refresh(); }}));
    if (inc) buttons.push(el("button", {type: "button", textContent: "Resolve…", onclick: () => resolveWithOutcome(inc.incident_id, refresh)}));
    c.actions.replaceChildren(...buttons);
    for (const s of entry.sparks) spark(s, row.sparklines[s.vital] || [], now);
  }

  // A sparkline: the last hour's 5-minute buckets as a band from min to max (uPlot).
  function spark(s, buckets, now) {
    const data = [buckets.map(b => b[0]), buckets.map(b => b[1]), buckets.map(b => b[2])];
    s.now = now;
    if (!s.chart) {
      s.chart = new uPlot({width: 120, height: 32, class: "spark", legend: {show: false}, cursor: {show: false},
        scales: {x: {time: false, range: () => [s.now - 3600, s.now]}}, axes: [{show: false}, {show: false}],
        series: [{}, {stroke: "#1e5fd0", width: 1, points: {show: false}}, {stroke: "#1e5fd0", width: 1, points: {show: false}}],
        bands: [{series: [2, 1], fill: "rgba(30,95,208,0.25)"}]}, data, s.cell);
    } else s.chart.setData(data);
  }

  for (const id of ["f-ward", "f-severity", "f-unack"]) $(id).addEventListener("change", refresh);
  start(() => { refresh(); live(() => refresh()); });
  setInterval(() => { if (!$("workspace").hidden) refresh(); }, 30000);  // ages and vitals between incident events
  window.vigilWard = {refresh, get refreshes() { return refreshes; }};
})();
