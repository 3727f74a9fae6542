// The patient app: sign in with the nurse's code, then today's readings, the monitor, a trend,
// alerts to answer and messages (with read receipts). Words from words.js; data from /api/patient/*.
"use strict";
const $ = (id) => document.getElementById(id);
let lang = localStorage.getItem("vigil.lang") || ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");
let csrf = null, emergency = "999", lastDay = null, lastMessages = [], lastTrend = null;
const w = () => WORDS[lang];
const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (values[k] ?? ""));
const clock = (t) => new Date(t * 1000).toLocaleTimeString(lang === "zh" ? "zh-CN" : "en-GB", {hour: "2-digit", minute: "2-digit"});
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) { if (k === "class") node.className = v; else node.setAttribute(k, v); }
  for (const c of children) node.append(c);
  return node;
};

async function api(path, method = "GET", body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const r = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin"});
  if (!r.ok) throw Object.assign(new Error(await r.text()), {status: r.status});
  return r.json();
}

function say(text) { $("status").textContent = text; }

function applyWords() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = w().title;
  for (const node of document.querySelectorAll("[data-w]")) node.textContent = w()[node.dataset.w];
  $("lang").textContent = w().switchTo;
  $("lang").setAttribute("lang", lang === "zh" ? "en" : "zh-CN");
  if (lastDay) drawDay(lastDay);
  drawMessages(lastMessages);
  drawTrend(lastTrend);
}

function drawDay(day) {
  lastDay = day;
  emergency = day.emergency_number || emergency;
  const list = $("readings");
  list.replaceChildren();
  for (const r of day.readings) {
    const words = fill(w().was, {vital: w().vital[r.vital], v: `${r.value}${w().unit[r.vital]}`, t: clock(r.t)});
    const judged = r.usual === null ? "" : (r.usual ? w().usual : w().unusual);
    list.append(el("li", {}, words, judged ? " — " : "", judged ? el("span", {class: r.usual ? "usual" : "unusual"}, judged) : ""));
  }
  if (!day.readings.length) list.append(el("li", {}, w().noReadings));
  drawMonitor(day.monitor);
  drawAlerts(day.alerts);
}

function drawMonitor(m) {
  const box = $("monitor");
  box.replaceChildren(el("p", {}, el("strong", {}, m.sending ? w().sending : w().notSending)));
  box.classList.toggle("not-sending", !m.sending);
  if (m.battery !== null && m.battery !== undefined) box.append(el("p", {}, fill(w().battery, {v: Math.round(m.battery)})));
  box.append(el("p", {}, m.last_reading_t ? fill(w().lastReading, {t: clock(m.last_reading_t)}) : w().never));
  if (!m.sending && m.advice) box.append(el("p", {}, w().advice[m.advice]));
}

function drawAlerts(alerts) {
  $("alerts").hidden = !alerts.length;
  const list = $("alert-list");
  list.replaceChildren();
  for (const a of alerts) {
    const kinds = a.kinds.map((k) => w().kinds[k] || k).join(lang === "zh" ? "、" : ", ");
    const question = el("p", {id: `q-${a.incident_id}`}, fill(w().alertSays, {kinds}));
    const ok = el("button", {type: "button", class: "ok", "aria-describedby": question.id}, w().ok);
    const help = el("button", {type: "button", class: "help", "aria-describedby": question.id}, w().help);
    ok.addEventListener("click", () => answer(a.incident_id, "ok"));
    help.addEventListener("click", () => answer(a.incident_id, "help"));
    list.append(el("li", {}, question, el("div", {class: "actions"}, ok, help)));
  }
}

async function answer(incidentId, choice) {
  try {
    await api("/api/patient/answers", "POST", {incident_id: incidentId, answer: choice});
    say(choice === "help" ? fill(w().helpSent, {n: emergency}) : w().answered);
  } catch (e) { say(w().failed); }
}

function drawMessages(messages) {
  lastMessages = messages;
  const list = $("message-list");
  list.replaceChildren();
  for (const m of messages) {
    const who = m.from === "vigil" ? w().fromVigil : fill(w().fromTeam, {who: m.author});
    const item = el("li", {class: m.read_t ? "" : "unread"}, el("p", {class: "meta"}, `${who} · ${clock(m.t)}`), el("p", {}, m.body));
    if (m.read_t) item.append(el("p", {class: "meta"}, `${w().read} ${clock(m.read_t)}`));
    else {
      const button = el("button", {type: "button", class: "secondary"}, w().markRead);
      button.addEventListener("click", () => markRead(m.key));
      item.append(button);
    }
    list.append(item);
  }
  if (!messages.length) list.append(el("li", {}, w().noMessages));
}

async function markRead(key) {
  try {
    const receipt = await api(`/api/patient/messages/${encodeURIComponent(key)}/read`, "POST", {});
    drawMessages(lastMessages.map((m) => (m.key === key ? {...m, read_t: receipt.read_t} : m)));
  } catch (e) { say(w().failed); }
}

function drawTrend(trend) {
  lastTrend = trend;
  const box = $("trend");
  box.replaceChildren();
  if (!trend || trend.buckets.length < 2) { box.append(el("p", {}, w().noTrend)); return; }
  const b = trend.buckets, W = 320, H = 120, pad = 24;
  const lo = Math.min(...b.map((x) => x.min)) - 1, hi = Math.max(...b.map((x) => x.max)) + 1;
  const x = (t) => pad + ((t - b[0].t) / Math.max(1, b[b.length - 1].t - b[0].t)) * (W - 2 * pad);
  const y = (v) => H - pad - ((v - lo) / Math.max(1, hi - lo)) * (H - 2 * pad);
  const band = b.map((p) => `${x(p.t)},${y(p.max)}`).concat(b.slice().reverse().map((p) => `${x(p.t)},${y(p.min)}`)).join(" ");
  const line = b.map((p) => `${x(p.t)},${y(p.mean)}`).join(" ");
  box.innerHTML = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="trend-t trend-d"><title id="trend-t"></title>` +
    `<desc id="trend-d"></desc><polygon class="band" points="${band}"/><polyline class="line" points="${line}"/>` +
    `<line class="axis" x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}"/>` +
    `<text x="${pad}" y="${H - 6}">${clock(b[0].t)}</text><text x="${W - pad - 30}" y="${H - 6}">${clock(b[b.length - 1].t)}</text>` +
    `<text x="2" y="${y(hi - 1) + 4}">${Math.round(hi - 1)}</text><text x="2" y="${y(lo + 1)}">${Math.round(lo + 1)}</text></svg>`;
  box.querySelector("title").textContent = w().trendTitle;
  box.querySelector("desc").textContent = w().trendDesc;
  const rows = b.map((p) => el("tr", {}, el("td", {}, clock(p.t)), el("td", {}, `${p.min}`), el("td", {}, `${p.max}`)));
  const table = el("table", {}, el("caption", {class: "hidden"}, w().trendDesc),
    el("thead", {}, el("tr", {}, el("th", {scope: "col"}, w().trendHour), el("th", {scope: "col"}, w().trendLow), el("th", {scope: "col"}, w().trendHigh))),
    el("tbody", {}, ...rows));
  box.append(el("details", {}, el("summary", {}, w().trendDesc), table));
}

async function load() {
  try {
    const [day, messages, trend] = await Promise.all([api("/api/patient/today"), api("/api/patient/messages"),
      api("/api/patient/trends?vital=spo2&hours=24")]);
    $("home").hidden = false; $("signin").hidden = true;
    drawDay(day); drawMessages(messages); drawTrend(trend);
  } catch (e) { if (e.status === 401 || e.status === 403) showSignIn(); else say(w().failed); }
}

function showSignIn() { $("home").hidden = true; $("signin").hidden = false; }

async function signIn(event) {
  event.preventDefault();
  $("code-error").textContent = "";
  try {
    const me = await api("/api/enrol", "POST", {code: $("code").value});
    csrf = me.csrf_token; say(w().connected); await load();
  } catch (e) { $("code-error").textContent = w().codeBad; $("code").focus(); }
}

const b64 = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - s.length % 4) % 4)), (c) => c.charCodeAt(0));
async function pushOn() {
  try {
    const {public_key} = await api("/api/patient/push-key");
    const registration = await navigator.serviceWorker.ready;
    if ((await Notification.requestPermission()) !== "granted") throw new Error("denied");
    const sub = (await registration.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: b64(public_key)})).toJSON();
    await api("/api/patient/push-subscriptions", "POST", {endpoint: sub.endpoint, p256dh: sub.keys.p256dh, auth: sub.keys.auth, language: lang});
    say(w().pushDone);
  } catch (e) { say(w().pushNo); }
}

async function start() {
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("vigil.lang", lang); say(""); applyWords();  // no stale words
  });
  $("signin-form").addEventListener("submit", signIn);
  $("push").addEventListener("click", pushOn);
  applyWords();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/app/sw.js", {scope: "/app/"}).catch(() => {});
  try { csrf = (await api("/api/me")).csrf_token; } catch (e) { showSignIn(); return; }
  await load();
}
start();
