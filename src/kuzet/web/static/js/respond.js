// The crew's page (phones, one thumb): open dispatches with the incident's type, place, address and a map link, and
// big buttons for the next sensible report. New calls are pushed over the crew's WebSocket (/api/v1/dispatches/live)
// with a sound and a browser notification; the list is fetched again after every reconnection and, only while the
// socket is down, now and then.
import {api, el, t} from "./api.js";
import {clock, feedBadge, offenceName, prioBadge, showError, when} from "./ops.js";

const POLL_MS = 30000;  // only while the push is down
const STEPS = ["acknowledged", "en_route", "on_scene", "closed"];
// What a crew may sensibly report next: the next step, or skip one (arrived without pressing "en route"); a crew on
// the way may be called off (closed).
const NEXT = {sent: ["acknowledged", "en_route"], acknowledged: ["en_route", "on_scene"], en_route: ["on_scene", "closed"],
  on_scene: ["closed"], closed: []};
const STAMP = {acknowledged: "acknowledged_at", en_route: "en_route_at", on_scene: "on_scene_at", closed: "closed_at"};

const box = document.getElementById("dispatches");
const errorLine = document.getElementById("resp-error");
const updated = document.getElementById("resp-updated");
const cards = new Map();  // dispatch id → {key, node}
let busy = false;
window.KUZET.respond = {polls: 0};

async function card(d) {
  const inc = d.incident;
  const type = await offenceName(inc.offence_type);
  const place = inc.place;
  const hasCoords = inc.lat !== null && inc.lat !== undefined;
  const note = el("input", {name: "note", maxlength: "2000", "aria-label": t("resp.note")});
  const status = el("p", {class: "error", role: "alert"});
  const allowed = NEXT[d.status] || [];
  const buttons = STEPS.map((step) => {
    const done = Boolean(d[STAMP[step]]);
    return el("button", {type: "button", class: `step step-${step}${done ? " done" : ""}`, "data-step": step,
      ...(allowed.includes(step) ? {} : {disabled: ""}), onclick: () => report(d, step, note.value, status)},
    el("span", {}, t(`resp.do.${step}`)), done ? el("small", {}, when(d[STAMP[step]])) : "");
  });
  return el("article", {class: `dispatch card prio-${inc.priority}`, "data-dispatch": d.id, "data-status": d.status,
    "data-testid": "dispatch"},
    el("header", {}, prioBadge(inc.priority), " ", el("span", {class: "badge"}, t(`disp.${d.status}`))),
    el("h2", {}, type),
    el("p", {class: "big"}, inc.title),
    el("p", {}, el("strong", {}, place ? place.name : "—"), place && place.address ? el("br") : "",
      place && place.address ? place.address : ""),
    hasCoords ? el("p", {class: "map-links"},
      el("a", {class: "button big", href: `geo:${inc.lat},${inc.lon}?q=${inc.lat},${inc.lon}`}, t("resp.map")), " ",
      el("a", {href: `https://www.openstreetmap.org/?mlat=${inc.lat}&mlon=${inc.lon}#map=18/${inc.lat}/${inc.lon}`,
        rel: "noopener", target: "_blank"}, "OpenStreetMap"),
      el("span", {class: "hint"}, ` ${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)}`)) : "",
    el("p", {class: "hint"}, `${t("resp.sent")}: ${when(d.sent_at)}${d.sent_by ? ` · ${d.sent_by}` : ""}`),
    d.note ? el("p", {}, `${t("resp.operator_note")}: ${d.note}`) : "",
    el("div", {class: "steps"}, ...buttons),
    el("label", {class: "note"}, t("resp.note"), note),
    status,
    el("p", {}, el("a", {href: `/incidents/${inc.id}`}, t("resp.open_incident"))));
}

async function report(d, step, note, status) {
  busy = true;
  box.querySelectorAll(`[data-dispatch="${d.id}"] button`).forEach((b) => { b.disabled = true; });
  try {
    await api(`/api/v1/dispatches/${d.id}/status`, {method: "POST", body: {status: step, note}});
    if (step === "closed") updated.textContent = `${t("resp.closed_done")} №${d.incident.id}`;
  } catch (err) { showError(status, err); }
  busy = false;
  await refresh(true);
}

async function refresh(force = false) {
  if (busy && !force) return;
  try {
    const data = await api("/api/v1/dispatches/mine");
    const seen = new Set();
    const nodes = [];
    for (const d of data.items) {
      seen.add(d.id);
      const key = JSON.stringify(d);
      let entry = cards.get(d.id);
      if (!entry || entry.key !== key) {
        entry = {key, node: await card(d)};
        cards.set(d.id, entry);
      }
      nodes.push(entry.node);
    }
    for (const id of [...cards.keys()]) if (!seen.has(id)) cards.delete(id);
    box.replaceChildren(...nodes);
    document.getElementById("resp-empty").hidden = nodes.length > 0;
    errorLine.textContent = "";
    if (!updated.textContent.startsWith(t("resp.closed_done")) || force === false) {
      updated.textContent = `${t("resp.updated")}: ${clock()}`;
    }
  } catch (err) { showError(errorLine, err); }
  window.KUZET.respond.polls += 1;
}

// --- alerts: a sound and a browser notification for a new call ------------------------------------------------------
const alertsButton = document.getElementById("alerts");
let alertsOn = localStorage.getItem("kuzet.respond.alerts") !== "0";
let audio = null;
window.KUZET.respond.alerts = 0;
window.KUZET.respond.notified = 0;

function showAlerts() {
  alertsButton.textContent = t(alertsOn ? "ops2.alerts_on" : "ops2.alerts_off");
  alertsButton.setAttribute("aria-pressed", String(alertsOn));
}
alertsButton.addEventListener("click", async () => {
  alertsOn = !alertsOn;
  localStorage.setItem("kuzet.respond.alerts", alertsOn ? "1" : "0");
  showAlerts();
  if (alertsOn) {
    chime(1);  // the tap unlocks sound in browsers that need a gesture first
    if (window.Notification && Notification.permission === "default") await Notification.requestPermission().catch(() => {});
  }
});
showAlerts();

function chime(times = 3) {
  if (!alertsOn) return;
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
    for (let i = 0; i < times; i++) {
      const osc = audio.createOscillator(), gain = audio.createGain();
      const at = audio.currentTime + i * 0.3;
      osc.frequency.value = i % 2 ? 988 : 1319;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.25);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.27);
    }
    window.KUZET.respond.alerts += 1;
  } catch (err) { /* no audio device: the notification and the highlight remain */ }
}

async function announce(item) {
  chime();
  const type = await offenceName(item.incident.offence_type).catch(() => item.incident.offence_type);
  const where = item.incident.place ? item.incident.place.name : "";
  if (alertsOn && window.Notification && Notification.permission === "granted") {
    try {
      const note = new Notification(t("ops2.new_call"), {body: [type, item.incident.title, where].filter(Boolean).join(" — "),
        tag: `dispatch-${item.id}`, requireInteraction: true});
      note.onclick = () => { window.focus(); note.close(); };
      window.KUZET.respond.notified += 1;
    } catch (err) { /* some browsers only notify from a service worker */ }
  }
  if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
}

// --- the push ----------------------------------------------------------------------------------------------------------
const showFeed = feedBadge(document.getElementById("feed-state"));
let backoff = 1000;
let feedOpen = false;

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/dispatches/live`);
  showFeed("connecting");
  let ping = null;
  ws.onmessage = async (msg) => {
    let data;
    try { data = JSON.parse(msg.data); } catch (err) { return; }
    if (data.type === "hello") {
      backoff = 1000;
      feedOpen = true;
      showFeed("open");
      refresh();  // what came while we were away
    } else if (data.type === "dispatch" && data.item) {
      const fresh = !cards.has(data.item.id) && data.change === "dispatched" && data.item.status === "sent";
      await refresh(true);
      if (fresh) {
        document.querySelector(`[data-dispatch="${data.item.id}"]`)?.classList.add("fresh");
        announce(data.item);
      }
      window.KUZET.respond.pushes = (window.KUZET.respond.pushes || 0) + 1;
    }
  };
  ws.onclose = (event) => {
    clearInterval(ping);
    feedOpen = false;
    if (event.code === 4401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
    if (event.code === 4404) { showFeed("forbidden"); return; }
    showFeed("down");
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15000);
  };
  ping = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send("ping"); }, 25000);
}

refresh();
connect();
setInterval(() => { if (!document.hidden && !feedOpen) refresh(); }, POLL_MS);
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
