// The wallboard: renders each snapshot the engine pushes on /wallboard/events (Server-Sent Events;
// EventSource reconnects by itself) and ticks the times shown in between.
"use strict";

const STATE_LABELS = {available: "available", reserved: "ringing", on_call: "on call", on_hold: "on hold",
                      wrap_up: "wrap-up",
                      paused: "paused", logged_out: "logged out"};
const STATE_ORDER = ["on_call", "on_hold", "reserved", "wrap_up", "available", "paused", "logged_out"];
let snapshot = null;
let receivedAt = 0;   // performance.now() when the snapshot came: times tick from there

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function percent(fraction, digits) {
  return (fraction * 100).toFixed(digits) + "%";
}

function figure(cls, value, label, sub, role) {
  const attrs = {class: "figure " + cls};
  if (role) attrs["data-role"] = role;
  return el("div", attrs, el("div", {class: "value"}, value), el("div", {class: "label"}, label),
            sub ? el("div", {class: "sub"}, sub) : null);
}

function elapsed() {
  return (performance.now() - receivedAt) / 1000;
}

function renderQueue(q) {
  const sl = q.service_level_today, target = q.service_level_target;
  const slClass = sl === null || sl === undefined ? "none" : (sl * 100 < target.percent ? "bad" : "good");
  const waitClass = q.waiting > 0 ? "busy" : "none";
  const longest = figure(waitClass, duration(q.longest_wait_seconds), "longest wait");
  longest.querySelector(".value").setAttribute("data-tick", q.waiting > 0 ? q.longest_wait_seconds : "");
  longest.setAttribute("data-role", "longest");
  const chips = STATE_ORDER.filter(s => q.agents[s]).map(
    s => el("span", {class: "chip", "data-state": s}, `${STATE_LABELS[s]} ${q.agents[s]}`));
  return el("div", {class: "card queue", "data-queue": q.name},
    el("h3", {}, q.name, el("small", {}, `offered today ${q.offered_today ?? 0}`)),
    el("div", {class: "figures"},
      figure(waitClass, String(q.waiting), "waiting", null, "waiting"),
      longest,
      figure(slClass, sl === null || sl === undefined ? "–" : percent(sl, 0), "service level today",
             `target ${target.percent}% in ${target.seconds} s`, "sl")),
    el("div", {class: "states"}, ...(chips.length ? chips : [el("span", {class: "chip"}, "no agent logged in")])));
}

function renderCampaign(c) {
  if (c.dial_rate_per_minute === undefined) {
    return el("div", {class: "card campaign", "data-campaign": c.name},
      el("h3", {}, c.name, el("small", {}, `${c.mode} · not running`)));
  }
  const over = c.abandon_rate * 100 > c.abandon_target_percent;
  return el("div", {class: "card campaign", "data-campaign": c.name},
    el("h3", {}, c.name, el("small", {}, `${c.mode} · ${c.active ? "active" : "paused"}`)),
    el("div", {class: "figures"},
      figure("", c.dial_rate_per_minute.toFixed(0), "dials / min", `${c.lines_in_flight} lines in flight`, "rate"),
      figure(over ? "bad" : "good", percent(c.abandon_rate, 1), "abandon rate",
             `target ≤ ${c.abandon_target_percent}% · ${c.abandoned} of ${c.live_answers}`, "abandon"),
      figure("", `${c.agents_busy}/${c.agents_logged_in}`, "agents busy", null, "busy")));
}

// Under an agent: the pause reason; the call's queue and caller while ringing or on a call; else
// the queues they are logged in to.
function agentDetail(a) {
  if (a.state === "paused" && a.reason) return a.reason;
  if ((a.state === "on_call" || a.state === "on_hold" || a.state === "reserved") && a.call_id) {
    return [a.call_queue, a.caller].filter(Boolean).join(" · ") || "call";
  }
  return (a.queues || []).join(", ");
}

function renderAgent(a) {
  const time = el("div", {class: "time", "data-tick": a.seconds_in_state}, duration(a.seconds_in_state));
  return el("div", {class: `agent s-${a.state}`, "data-agent": a.id},
    el("div", {class: "who"}, a.name || a.id, " ", el("small", {}, a.name ? a.id : "")),
    el("div", {class: "state"}, STATE_LABELS[a.state] || a.state),
    time,
    el("div", {class: "reason"}, agentDetail(a)));
}

function render() {
  const s = snapshot;
  const queues = s.queues.map(renderQueue), campaigns = s.campaigns.map(renderCampaign);
  const agents = s.agents.filter(a => a.state !== "logged_out").map(renderAgent);
  document.getElementById("queues").replaceChildren(...(queues.length ? queues : [el("p", {class: "empty"}, "no queue")]));
  document.getElementById("campaigns").replaceChildren(
    ...(campaigns.length ? campaigns : [el("p", {class: "empty"}, "no campaign")]));
  document.getElementById("agents").replaceChildren(
    ...(agents.length ? agents : [el("p", {class: "empty"}, "no agent logged in")]));
}

function tick() {
  document.getElementById("clock").textContent = new Date().toLocaleTimeString();
  if (!snapshot) return;
  const dt = elapsed();
  for (const node of document.querySelectorAll("[data-tick]")) {
    const base = node.getAttribute("data-tick");
    if (base !== "") node.textContent = duration(Number(base) + dt);
  }
}

function connect() {
  const token = new URLSearchParams(location.search).get("token");
  const url = "/wallboard/events" + (token ? "?token=" + encodeURIComponent(token) : "");
  const link = document.getElementById("link");
  const source = new EventSource(url);
  source.onopen = () => { link.textContent = "live"; link.className = "link up"; };
  source.onerror = () => { link.textContent = "reconnecting…"; link.className = "link down"; };
  source.onmessage = (event) => {
    snapshot = JSON.parse(event.data);
    receivedAt = performance.now();
    link.textContent = "live"; link.className = "link up";
    render();
    tick();
  };
}

connect();
tick();
setInterval(tick, 250);
