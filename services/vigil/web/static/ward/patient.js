// The patient page: vitals over 1 h / 24 h / 7 d as min–max bands (uPlot, one chart per vital,
// cursors in sync), alert and incident markers on the same time axis, NEWS2 with its breakdown,
// model risk and drivers, the incident timeline, what was delivered, the patient's replies.
"use strict";
(() => {
  const {$, el, api, age, live, act, resolveWithOutcome, start, VITALS} = window.Vigil;
  const patientId = new URLSearchParams(location.search).get("id") || "";
  let span = "24h", charts = [], inFlight = null, again = false;
  const sync = uPlot.sync("patient");
  const SEV = {low: 1, medium: 2, high: 3, critical: 4};

  function refresh() {
    if (inFlight) { again = true; return inFlight; }
    inFlight = (async () => {
      try { do { again = false; await draw(); } while (again); } finally { inFlight = null; }
    })();
    return inFlight;
  }

  async function draw() {
    const response = await api(`/api/patients/${encodeURIComponent(patientId)}?span=${span}`);
    if (!response.ok) { $("name").textContent = "No such patient in your wards."; return; }
    const page = await response.json();
    head(page);
    chartsFor(page);
    incident(page);
    news2(page.news2);
    risk(page.risk);
    timeline(page);
    delivered(page.delivered, page.now);
    replies(page);
  }

  function head(page) {
    const p = page.patient, m = page.monitoring;
    $("title").textContent = $("name").textContent = p.name || p.patient_id;
    document.title = "Vigil · " + (p.name || p.patient_id);
    $("ids").textContent = `${p.patient_id} · ward ${p.ward}`;
    $("monitoring").replaceChildren(...[el("span", {class: "mon " + m.state, textContent: m.state.replace("_", " ")}),
                                        m.words ? el("span", {class: "muted", textContent: " — " + m.words}) : null].filter(Boolean));
    for (const b of document.querySelectorAll(".spans button")) b.classList.toggle("on", b.dataset.span === span);
    $("grafana").hidden = !page.grafana_url;
    if (page.grafana_url) $("grafana").href = page.grafana_url;
  }

  function markers(page) {
    const lines = page.alerts.map(a => ({t: a.raised_t, color: "#b3261e", dash: []}));
    for (const i of page.incidents) for (const e of i.timeline)
      if (e.event === "acknowledged" || e.event === "resolved") lines.push({t: e.t, color: "#1e5fd0", dash: [4, 3]});
    return lines;
  }

  // Vertical lines at alert and acknowledgement times, drawn by uPlot's draw hook on each chart.
  function markerPlugin(lines) {
    return {hooks: {draw: [u => {
      const ctx = u.ctx, {left, top, width, height} = u.bbox;
      ctx.save(); ctx.lineWidth = 1.5 * devicePixelRatio;
      for (const line of lines) {
        const x = u.valToPos(line.t, "x", true);
        if (x < left || x > left + width) continue;
        ctx.strokeStyle = line.color; ctx.setLineDash(line.dash.map(d => d * devicePixelRatio));
        ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
      }
      ctx.restore();
    }]}};
  }

  // The y axis around the data with some room (uPlot's default reaches down to 0 for a flat line).
  function padded(u, low, high) {
    if (low == null || high == null) return [0, 1];
    const pad = Math.max((high - low) * 0.15, Math.abs(high) * 0.04, 0.02);
    return [low - pad, high + pad];
  }

  function chartFor(vital, buckets, page, lines, width) {
    const [label, unit] = VITALS[vital];
    const data = [buckets.map(b => b[0]), buckets.map(b => b[1]), buckets.map(b => b[2])];
    const line = {stroke: "#1e5fd0", width: 1, points: {show: buckets.length < 40, size: 5}};  // sparse (a cuff's BP): points
    const series = [{}, {label: "lowest", ...line}, {label: "highest", ...line}];
    if (vital === "news2") {
      data.push(buckets.map(b => b[5] ? b[2] : null));
      series.push({label: "partial", stroke: "#e8710a", width: 0, points: {show: true, size: 6, fill: "#e8710a"}});
    }
    const empty = buckets.length ? "" : " — no readings in this span";
    const holder = el("div", {class: "chart", data: {vital}}, el("p", {class: "chart-title", textContent: `${label}${unit ? " (" + unit + ")" : ""}${empty}`}));
    $("charts").append(holder);
    return new uPlot({width, height: 110, legend: {show: false}, cursor: {sync: {key: sync.key}},
      scales: {x: {time: true, range: () => [page.start, page.now]}, y: {range: padded}},
      axes: [{}, {size: 48}], series, bands: [{series: [2, 1], fill: "rgba(30,95,208,0.22)"}],
      plugins: [markerPlugin(lines)]}, data, holder);
  }

  function chartsFor(page) {
    for (const c of charts) c.destroy();
    $("charts").replaceChildren();
    const width = Math.max(320, $("charts").clientWidth - 4), lines = markers(page);
    charts = Object.entries(page.series).map(([vital, buckets]) => chartFor(vital, buckets, page, lines, width));
    // The incident timeline: each incident event at its severity's height, on the same axis.
    const events = page.incidents.flatMap(i => i.timeline.map(e => [e.t, SEV[(e.detail || {}).severity] || 1]));
    events.sort((a, b) => a[0] - b[0]);
    $("timeline-chart").replaceChildren();
    charts.push(new uPlot({width, height: 90, legend: {show: false}, cursor: {sync: {key: sync.key}},
      scales: {x: {time: true, range: () => [page.start, page.now]}, y: {range: [0, 5]}},
      axes: [{}, {size: 44, values: (u, ticks) => ticks.map(t => ["", "low", "med", "high", "crit", ""][t] || "")}],
      series: [{}, {label: "incident event", stroke: "#b3261e", width: 0, points: {show: true, size: 8, fill: "#b3261e"}}],
      plugins: [markerPlugin(lines)]}, [events.map(e => e[0]), events.map(e => e[1])], $("timeline-chart")));
  }

  function incident(page) {
    const open = page.incidents.filter(i => i.state !== "resolved").slice(-1)[0];
    const box = $("incident");
    if (!open) { box.replaceChildren(el("span", {class: "muted", textContent: "No open incident."})); return; }
    const buttons = [];
    if (open.state === "open") buttons.push(el("button", {type: "button", textContent: "Acknowledge",
      onclick: async () => { await act(open.incident_id, "acknowledge"); refresh(); }}));
    buttons.push(el("button", {type: "button", textContent: "Resolve…", onclick: () => resolveWithOutcome(open.incident_id, refresh)}));
    box.replaceChildren(el("div", {}, el("span", {class: "sev " + open.severity, textContent: open.severity}), " ",
      open.state === "open" ? `open for ${age(page.now - open.opened_t)}` : `acknowledged by ${open.acknowledged_by}`),
      el("div", {class: "actions", data: {incident: open.incident_id}}, ...buttons));
  }

  function news2(n) {
    if (!n) { $("news2").replaceChildren(el("span", {class: "muted", textContent: "No NEWS2 yet."})); return; }
    const rows = [el("dt", {textContent: "Score"}), el("dd", {class: n.partial ? "partial" : "",
      textContent: `${n.score}${n.partial ? " (partial)" : ""} · ${age(n.age_s)} ago`})];
    for (const [param, points] of Object.entries(n.parameters)) rows.push(el("dt", {textContent: param}), el("dd", {textContent: String(points)}));
    if (n.missing.length) rows.push(el("dt", {textContent: "not observed"}), el("dd", {class: "partial", textContent: n.missing.join(", ")}));
    $("news2").replaceChildren(el("dl", {class: "kv"}, ...rows),
      el("p", {class: "muted", textContent: "Points per parameter from the latest value of each vital; a partial score may be higher."}));
  }

  function risk(r) {
    if (!r) { $("risk").replaceChildren(el("span", {class: "muted", textContent: "No model score."})); return; }
    const items = r.drivers.map(d => el("li", {textContent: Object.entries(d).map(([k, v]) => `${k}: ${typeof v === "number" ? v.toFixed(2) : v}`).join(" · ")}));
    $("risk").replaceChildren(...[el("div", {textContent: r.value == null ? "–" : `${Number(r.value).toFixed(2)} · ${age(r.age_s)} ago`}),
      items.length ? el("ul", {class: "plain"}, ...items) : el("span", {class: "muted", textContent: "No drivers named by an alert in this span."})]);
  }

  function timeline(page) {
    const items = [];
    for (const a of page.alerts) items.push([a.raised_t, `${a.kind} raised (${a.severity})`, a.clinician_summary || a.rule]);
    for (const i of page.incidents) for (const e of i.timeline)
      items.push([e.t, `incident ${e.event}${e.actor && e.actor !== "vigil" ? " by " + e.actor : ""}`,
                  (e.detail || {}).outcome ? `outcome: ${e.detail.outcome.replace("_", " ")}${e.detail.note ? " — " + e.detail.note : ""}` : ""]);
    items.sort((a, b) => b[0] - a[0]);
    items.splice(60);
    $("timeline").replaceChildren(...items.map(([t, what, more]) => el("li", {},
      el("strong", {textContent: what}), el("span", {class: "age", textContent: age(page.now - t) + " ago"}),
      more ? el("div", {class: "text", textContent: more}) : null)));
  }

  function delivered(rows, now) {
    $("delivered").replaceChildren(...(rows.length ? rows.map(r => el("li", {},
      el("strong", {textContent: `${r.event === "explanation" ? "explanation" : r.event} to ${r.audience} · ${r.channel}${r.text_source === "llm" ? " · written by the language model" : ""}`}),
      el("span", {class: "age", textContent: age(now - r.sent_t) + " ago"}),
      el("div", {class: "text", lang: r.language, textContent: r.body || r.subject}))) : [el("li", {class: "muted", textContent: "Nothing delivered in this span."})]));
  }

  function replies(page) {
    const words = {ok: "“I'm OK”", help: "“I need help”"};
    const items = [...page.patient_replies.map(r => el("li", {}, el("strong", {textContent: words[r.answer] || r.answer}),
                     el("span", {class: "age", textContent: age(page.now - r.t) + " ago"}))),
                   ...page.read_receipts.map(r => el("li", {}, "read: " + (r.subject || r.message_key),
                     el("span", {class: "age", textContent: age(page.now - r.read_t) + " ago"})))];
    $("replies").replaceChildren(...(items.length ? items : [el("li", {class: "muted", textContent: "None."})]));
    $("replies-source").textContent = page.replies_source || "";
  }

  for (const b of document.querySelectorAll(".spans button")) b.addEventListener("click", () => { span = b.dataset.span; refresh(); });
  start(() => { refresh(); live(event => { const p = event && (event.payload || {}); if (!event || (p.patient_id || (p.incident || {}).patient_id) === patientId) refresh(); }); });
  window.vigilPatient = {refresh};
})();
