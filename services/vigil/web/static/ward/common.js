// The ward workspace's shared parts: sign-in (session cookie + CSRF token), the API helper, ages,
// the live stream and the resolve-with-outcome dialog. Loaded by ward.html and patient.html.
"use strict";
window.Vigil = (() => {
  const $ = id => document.getElementById(id);
  const state = {csrf: null, me: null, stream: null, onSignedIn: null};

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") node.className = v; else if (k === "data") Object.assign(node.dataset, v);
      else if (k in node) node[k] = v; else node.setAttribute(k, v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  async function api(path, options = {}) {
    const headers = {...(options.headers || {})};
    if (options.method && options.method !== "GET") {
      headers["X-CSRF-Token"] = state.csrf || ""; headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, {...options, headers, credentials: "same-origin"});
    if (response.status === 401) { showLogin(); throw new Error("signed out"); }
    return response;
  }

  // "42 s", "7 min", "3 h", "2 d": how long ago, on the server's clock (the API gives ages).
  function age(seconds) {
    if (seconds == null) return "";
    const s = Math.max(0, seconds);
    if (s < 90) return Math.round(s) + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    if (s < 172800) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " d";
  }

  function showLogin() {
    if (state.stream) { state.stream.close(); state.stream = null; }
    state.csrf = null;
    $("workspace").hidden = $("who").hidden = $("live").hidden = true;
    $("login").hidden = false;
  }

  function signedIn(me) {
    state.csrf = me.csrf_token; state.me = me;
    $("whoami").textContent = me.name;
    $("role").textContent = me.role.replace("_", " ");
    $("login").hidden = true;
    $("workspace").hidden = $("who").hidden = $("live").hidden = false;
    if (state.onSignedIn) state.onSignedIn(me);
  }

  // The console inbox's live stream (same-origin: the session cookie goes along). Every incident
  // event and a gap (events lost while away) call `changed`; the page decides what to reload.
  function live(changed) {
    if (state.stream) state.stream.close();
    const stream = state.stream = new EventSource("/api/stream?inbox=console");
    const badge = $("live");
    stream.onopen = () => { badge.textContent = "live"; badge.classList.add("on"); };
    stream.onerror = () => { badge.textContent = "reconnecting…"; badge.classList.remove("on"); };
    stream.addEventListener("notification", event => changed(JSON.parse(event.data)));
    stream.addEventListener("gap", () => changed(null));
  }

  async function act(incidentId, action, body = {}) {
    const response = await api(`/api/incidents/${encodeURIComponent(incidentId)}/${action}`,
                               {method: "POST", body: JSON.stringify(body)});
    if (!response.ok) alert(await response.text());
    return response.ok;
  }

  // Resolve with an outcome (true deterioration, false alarm, artefact, other) and a free note.
  function resolveWithOutcome(incidentId, done) {
    const dialog = $("resolve-dialog"), form = $("resolve-form");
    form.reset();
    dialog.onclose = async () => {
      if (dialog.returnValue !== "ok") return;
      const outcome = (form.querySelector("input[name=outcome]:checked") || {}).value;
      if (!outcome) return;
      if (await act(incidentId, "resolve", {outcome, note: $("resolve-note").value})) done();
    };
    dialog.showModal();
  }

  function start(onSignedIn) {
    state.onSignedIn = onSignedIn;
    $("login").addEventListener("submit", async event => {
      event.preventDefault();
      const response = await fetch("/api/login", {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({username: $("username").value, password: $("password").value})});
      $("password").value = "";
      if (response.ok) { $("login-error").textContent = ""; signedIn(await response.json()); }
      else $("login-error").textContent = response.status === 429 ? "Too many attempts: wait a few minutes."
                                                                   : "Wrong username or password.";
    });
    $("logout").addEventListener("click", async () => {
      await fetch("/api/logout", {method: "POST", headers: {"X-CSRF-Token": state.csrf || ""}, credentials: "same-origin"});
      showLogin();
    });
    fetch("/api/me", {credentials: "same-origin"}).then(async r => r.ok ? signedIn(await r.json()) : showLogin());
  }

  const VITALS = {hr: ["HR", "/min", 0], spo2: ["SpO2", "%", 0], rr: ["RR", "/min", 0], temp: ["Temp", "°C", 1],
                  sbp: ["BP", "mmHg", 0], news2: ["NEWS2", "", 0], risk: ["Risk", "", 2]};
  return {$, el, api, age, live, act, resolveWithOutcome, start, state, VITALS};
})();
