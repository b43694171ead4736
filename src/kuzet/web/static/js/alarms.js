// The alarm queue: alarms of the operator's organisation, most urgent first, pushed live over a WebSocket (a short
// sound, highlighted); watch the camera live or play the clip, acknowledge, dismiss as false, open an incident.
import {api, el, t, tn} from "./api.js";
import {LivePlayer} from "./live.js";
import {OpsFeed, RANK, feedBadge, offenceTypes, prioBadge, showError, stateBadge, when} from "./ops.js";

const OPEN = ["new", "acknowledged"];
const list = document.getElementById("alarms");
const empty = document.getElementById("alarms-empty");
const errorLine = document.getElementById("alarms-error");
const count = document.getElementById("alarm-count");
const alarms = new Map();  // id → alarm as the API gives it
const fresh = new Set();  // ids pushed since the page opened, highlighted for a while
const images = new Map();  // url → <img>, so a re-render never fetches (and audits) a thumbnail again
let filter = "open";
const baseTitle = document.title;
window.KUZET.alarms = {loaded: false, beeps: 0};

// --- sound ----------------------------------------------------------------------------------------------------------
const muteButton = document.getElementById("mute");
let muted = localStorage.getItem("kuzet.alarms.muted") === "1";
let audio = null;

function showMute() {
  muteButton.textContent = muted ? t("al.sound_off") : t("al.sound_on");
  muteButton.setAttribute("aria-pressed", String(muted));
}
muteButton.addEventListener("click", () => {
  muted = !muted;
  localStorage.setItem("kuzet.alarms.muted", muted ? "1" : "0");
  showMute();
  if (!muted) beep("low");  // the click unlocks audio in browsers that need a gesture first
});
showMute();

function beep(priority) {
  if (muted) return;
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
    const now = audio.currentTime;
    const pitch = {critical: 1320, high: 1046, medium: 880, low: 660}[priority] || 880;
    const repeats = priority === "critical" ? 3 : priority === "high" ? 2 : 1;
    for (let i = 0; i < repeats; i++) {
      const osc = audio.createOscillator(), gain = audio.createGain();
      const at = now + i * 0.22;
      osc.frequency.value = pitch;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.2);
    }
    window.KUZET.alarms.beeps += 1;
  } catch (err) { /* no audio device: the highlight still shows */ }
}

// --- the list -------------------------------------------------------------------------------------------------------
const shown = (a) => filter === "all" || OPEN.includes(a.state);
const isPlate = (a) => Boolean(a.hot_list) || (a.event && a.event.kind === "plate");

function thumbnail(a) {
  const url = (isPlate(a) && a.crop_url) || a.snapshot_url;
  if (!url) return el("div", {class: "thumb none", "aria-hidden": "true"}, "—");
  if (!images.has(url)) {
    images.set(url, el("img", {class: isPlate(a) && a.crop_url ? "thumb plate" : "thumb", src: url, loading: "lazy",
      alt: `${t("al.snapshot")}: ${a.camera.name || ""}`}));
  }
  return images.get(url);
}

function card(a) {
  const actions = el("div", {class: "alarm-actions"},
    el("button", {type: "button", "data-act": "live", onclick: () => watchLive(a)}, t("al.watch_live")),
    a.clip_url ? el("button", {type: "button", "data-act": "clip", onclick: () => playClip(a)}, t("al.play_clip")) : "");
  if (a.state === "new") {
    actions.append(el("button", {type: "button", "data-act": "ack", class: "primary", onclick: () => acknowledge(a)},
      t("al.acknowledge")));
  }
  if (OPEN.includes(a.state)) {
    actions.append(
      el("button", {type: "button", "data-act": "dismiss", onclick: () => askDismiss(a)}, t("al.false")),
      el("button", {type: "button", "data-act": "incident", class: "primary", onclick: () => askIncident(a)},
        t("al.open_incident")));
  }
  if (a.incident_id) actions.append(el("a", {href: `/incidents/${a.incident_id}`}, `${t("inc.one")} №${a.incident_id}`));
  const place = a.place ? [a.place.name !== a.camera.name ? a.place.name : "", a.place.address].filter(Boolean).join(", ") : "";
  const details = [];
  if (a.hot_list) details.push(`${a.hot_list.list}: ${a.hot_list.plate}${a.hot_list.reason ? ` — ${a.hot_list.reason}` : ""}`);
  else if (a.event && a.event.plate) details.push(`${t("ev.plate")}: ${a.event.plate}`);
  if (a.event && a.event.label && a.event.kind !== "plate") details.push(t(`ev.label.${a.event.label}`));
  if (a.event && a.event.zone) details.push(`${t("ev.zone")}: ${a.event.zone}`);
  if (a.dismiss_reason) details.push(`${t("al.reason")}: ${a.dismiss_reason}`);
  const status = el("p", {class: "error", role: "alert"});
  return el("li", {class: `alarm prio-${a.priority} state-${a.state}${fresh.has(a.id) ? " fresh" : ""}`,
    "data-alarm": a.id, "data-state": a.state, "data-testid": "alarm"},
    thumbnail(a),
    el("div", {class: "alarm-body"},
      el("div", {class: "alarm-title"}, prioBadge(a.priority), " ", el("strong", {}, a.title), " ",
        stateBadge("al.state", a.state),
        (a.occurrences || 1) > 1 ? el("span", {class: "badge repeats", "data-testid": "alarm-count-badge",
          title: t("ops2.repeats_hint")}, tn("ops2.repeats", a.occurrences)) : ""),
      el("div", {}, el("a", {href: `/cameras/${a.camera.id}`}, a.camera.name || `#${a.camera.id}`),
        place ? ` · ${place}` : ""),
      el("div", {class: "hint"}, el("time", {datetime: a.raised_at}, when(a.raised_at)),
        (a.occurrences || 1) > 1 ? ` · ${t("ops2.last_seen", {when: when(a.last_seen_at)})}` : "",
        details.length ? ` · ${details.join(" · ")}` : ""),
      actions, status));
}

function order(a, b) {
  if (filter === "open" && a.priority_rank !== b.priority_rank) return (b.priority_rank || 0) - (a.priority_rank || 0);
  return Date.parse(b.raised_at) - Date.parse(a.raised_at) || b.id - a.id;
}

function render() {
  const items = [...alarms.values()].filter(shown).sort(order);
  list.replaceChildren(...items.map(card));
  empty.hidden = items.length > 0;
  const waiting = items.filter((a) => a.state === "new").length;
  count.textContent = `${t("al.count_new")}: ${waiting} · ${t("al.count_shown")}: ${items.length}`;
  document.title = waiting ? `(${waiting}) ${baseTitle}` : baseTitle;
}

let loadedFilter = null;
async function load() {
  const query = filter === "open" ? OPEN.map((s) => `state=${s}`).join("&") + "&limit=500" : "limit=200";
  try {
    const data = await api(`/api/v1/alarms?${query}`);
    const known = new Set(alarms.keys());
    const catchingUp = loadedFilter === filter;  // a refresh of the same list: what is new was missed while away
    alarms.clear();
    for (const a of data.items) {
      alarms.set(a.id, a);
      if (catchingUp && !known.has(a.id) && a.state === "new") markFresh(a);
    }
    loadedFilter = filter;
    errorLine.textContent = "";
  } catch (err) { showError(errorLine, err); }
  render();
  window.KUZET.alarms.loaded = true;
}

function markFresh(a) {
  fresh.add(a.id);
  setTimeout(() => {
    fresh.delete(a.id);
    list.querySelector(`[data-alarm="${a.id}"]`)?.classList.remove("fresh");
  }, 15000);
  beep(a.priority);
}

/** One more sighting of an alarm already in the queue: its card shows the count and the new picture, a short sound
 * for the urgent ones, no new card. */
function markRepeated(a) {
  fresh.add(a.id);
  setTimeout(() => { fresh.delete(a.id); list.querySelector(`[data-alarm="${a.id}"]`)?.classList.remove("fresh"); }, 5000);
  if (a.priority === "critical" || a.priority === "high") beep("low");
}

function upsert(a) {
  if (!a) return;
  alarms.set(a.id, a);
}

document.querySelectorAll("[data-filter]").forEach((b) => b.addEventListener("click", () => {
  filter = b.dataset.filter;
  document.querySelectorAll("[data-filter]").forEach((x) => {
    x.classList.toggle("active", x === b);
    x.setAttribute("aria-pressed", String(x === b));
  });
  load();
}));

// --- live push ------------------------------------------------------------------------------------------------------
const feed = new OpsFeed({
  onState: feedBadge(document.getElementById("feed-state")),
  onConnect: () => { if (window.KUZET.alarms.loaded) load(); },  // catch up on what came while we were away
  onMessage: (msg) => {
    if (!msg.alarm) return;
    const known = alarms.has(msg.alarm.id);
    upsert(msg.alarm);
    if (msg.type === "raised" && !known) markFresh(msg.alarm);
    if (msg.type === "repeated" && known) markRepeated(msg.alarm);
    render();
  },
});

// --- actions --------------------------------------------------------------------------------------------------------
const statusOf = (a) => list.querySelector(`[data-alarm="${a.id}"] [role=alert]`);

async function acknowledge(a) {
  try { upsert(await api(`/api/v1/alarms/${a.id}/acknowledge`, {method: "POST"})); render(); }
  catch (err) { const s = statusOf(a); if (s) showError(s, err); }
}

function dialog(id, onSubmit) {
  const box = document.getElementById(id);
  const form = box.querySelector("form");
  box.querySelector("[data-close]").addEventListener("click", () => box.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector("[role=alert]");
    error.textContent = "";
    try { await onSubmit(form); box.close(); } catch (err) { showError(error, err); }
  });
  return {box, form};
}

let target = null;  // the alarm a dialog is about
const dismissBox = dialog("dismiss-dialog", async (form) => {
  upsert(await api(`/api/v1/alarms/${target.id}/dismiss`, {method: "POST", body: {reason: form.reason.value.trim()}}));
  render();
});
function askDismiss(a) {
  target = a;
  dismissBox.form.reset();
  document.getElementById("dismiss-what").textContent = `${a.title} — ${a.camera.name} — ${when(a.raised_at)}`;
  dismissBox.box.showModal();
}

const incidentBox = dialog("incident-dialog", async (form) => {
  const made = await api(`/api/v1/alarms/${target.id}/incident`, {method: "POST", body: {
    offence_type: form.offence_type.value, title: form.title.value.trim(), priority: form.priority.value}});
  location.href = `/incidents/${made.id}`;
});
async function askIncident(a) {
  target = a;
  const form = incidentBox.form;
  form.reset();
  if (!form.offence_type.options.length) {
    try {
      form.offence_type.replaceChildren(...(await offenceTypes()).map((x) => el("option", {value: x.id}, x.name)));
    } catch (err) { showError(document.getElementById("incident-error"), err); }
  }
  form.title.value = a.title;
  form.priority.value = a.priority;
  if (a.suggested_offence_type) form.offence_type.value = a.suggested_offence_type;  // e.g. a stolen car: vehicle theft
  document.getElementById("incident-what").textContent = `${a.camera.name} — ${when(a.raised_at)}`;
  incidentBox.box.showModal();
}

// --- the player: live (sub stream) or the alarm's clip ---------------------------------------------------------------
const viewer = document.getElementById("viewer");
const video = document.getElementById("viewer-video");
const message = document.getElementById("viewer-message");
const hint = document.getElementById("viewer-hint");
let player = null;
const say = (text) => { message.textContent = text || ""; message.hidden = !text; };

function stopPlayer() {
  player?.stop();
  player = null;
  video.pause();
  video.removeAttribute("src");
  video.load();
  say(null);
}

function openViewer(title, a) {
  stopPlayer();
  viewer.hidden = false;
  document.getElementById("viewer-title").textContent = title;
  hint.replaceChildren(el("a", {href: `/cameras/${a.camera.id}`}, t("al.camera_page")), ` · ${when(a.raised_at)}`);
}

function watchLive(a) {
  openViewer(`${t("al.live")}: ${a.camera.name}`, a);
  video.controls = false;
  window.KUZET.viewer = "live";
  player = new LivePlayer(video, a.camera.id, {stream: "sub", onMessage: say});
  player.start();
}

function playClip(a) {
  openViewer(`${t("al.clip")}: ${a.camera.name}`, a);
  video.controls = true;
  window.KUZET.viewer = "clip";
  video.src = a.clip_url;
  video.play().catch(() => {});
}
video.addEventListener("error", () => { if (window.KUZET.viewer === "clip" && video.getAttribute("src")) say(t("al.no_clip")); });
document.getElementById("viewer-close").addEventListener("click", () => { stopPlayer(); viewer.hidden = true; });

load().then(() => feed.start());
// While the socket is down (it reconnects by itself), the list is still refreshed now and then.
setInterval(() => { if (window.KUZET.feed !== "open" && !document.hidden) load(); }, 15000);
