// Body-worn and dash cameras: the caller's recordings waiting for a category (flagged), search, one recording played
// with its hashes, category and holds, a dash camera's GPS track on the map with a marker that follows the video,
// and the unit's devices with who has them. Every name and value is put in as text (el / textContent).
import {api, el, fmtTime, label, t, tn} from "./api.js";
import {fmtDuration, isoOf, showError} from "./ops.js";

const me = window.KUZET.user;
const rows = document.getElementById("bc-rows");
const error = document.getElementById("bc-error");
const detail = document.getElementById("bc-detail");
const detailError = document.getElementById("bc-detail-error");
const video = document.getElementById("bc-video");
const mapBox = document.getElementById("bc-map");
const progressBox = document.getElementById("bc-redact-progress");
let current = null;
let map = null, trackLayer = null, marker = null, track = [];

const catName = (code) => (code ? label("bodycam_category", code) : t("bc.uncategorised"));

async function loadCategories() {
  const categories = await api("/api/v1/bodycams/categories");
  const filter = document.getElementById("bc-category");
  const setter = document.getElementById("bc-set-category");
  for (const c of categories) {
    filter.append(el("option", {value: c.code}, catName(c.code)));
    setter.append(el("option", {value: c.code}, catName(c.code)));
  }
}

async function loadDevices() {
  const devices = await api("/api/v1/bodycams/devices");
  const select = document.getElementById("bc-device");
  const body = document.getElementById("bc-device-rows");
  body.replaceChildren();
  for (const d of devices) {
    select.append(el("option", {value: String(d.id)}, d.serial));
    const withWhom = d.current_shift ? t("bc.out_to", {officer: String(d.current_shift.officer_id)}) : t("bc.in");
    body.append(el("tr", {"data-serial": d.serial}, el("td", {}, d.serial), el("td", {}, label("bodycam_kind", d.kind)),
      el("td", {}, d.model || "—"), el("td", {}, withWhom)));
  }
}

async function flag() {
  const node = document.getElementById("bc-flag");
  if (!me) return;
  const mine = await api(`/api/v1/bodycams/recordings?officer_id=${me.id}&category=none&limit=1`);
  node.hidden = mine.total === 0;
  node.textContent = tn("bc.flag", mine.total);
}

async function search(event) {
  if (event) event.preventDefault();
  error.textContent = "";
  const form = new FormData(document.getElementById("bc-search"));
  const params = new URLSearchParams();
  for (const [key, value] of form.entries()) {
    if (!value) continue;
    params.set(key, key === "start" || key === "end" ? isoOf(value) : value);
  }
  try {
    const page = await api(`/api/v1/bodycams/recordings?${params}`);
    rows.replaceChildren(...page.items.map((r) => el("tr", {class: "clickable", "data-id": String(r.id),
      onclick: () => openRecording(r.id)},
    el("td", {}, fmtTime(new Date(r.started_at))), el("td", {}, r.serial), el("td", {}, String(r.officer_id ?? "—")),
    el("td", {}, fmtDuration(r.media && r.media.duration)), el("td", {}, catName(r.category)),
    el("td", {}, r.held ? t("bc.yes") : ""))));
    document.getElementById("bc-empty").hidden = page.items.length > 0;
  } catch (err) {
    showError(error, err);
  }
}

function fact(name, value) {
  return [el("dt", {}, t(name)), el("dd", {}, value)];
}

async function openRecording(id) {
  detailError.textContent = "";
  const r = await api(`/api/v1/bodycams/recordings/${id}`);
  current = r;
  detail.hidden = false;
  document.getElementById("bc-detail-title").textContent = `${r.serial} · ${fmtTime(new Date(r.started_at))}`;
  video.src = `/api/v1/bodycams/recordings/${id}/video.mp4`;
  document.getElementById("bc-facts").replaceChildren(
    ...fact("bc.file", r.filename), ...fact("bc.sha256", r.sha256),
    ...fact("bc.playable_sha256", r.playable_sha256 || t("bc.plays_as_is")),
    ...fact("bc.ingested", `${fmtTime(new Date(r.ingested_at))} (${label("bodycam_via", r.via)})`),
    ...fact("bc.category", catName(r.category)),
    ...fact("bc.expires", r.expires_at ? fmtTime(new Date(r.expires_at)) : "—"),
    ...fact("bc.holds", r.holds.map((h) => h.reason).join("; ") || "—"));
  if (r.category) document.getElementById("bc-set-category").value = r.category;
  resetRedaction();
  await Promise.all([showTrack(id, r), showNearby(id)]);
  latestRedaction(id).catch((err) => showError(detailError, err));
}

async function showNearby(id) {
  // street cameras the user may watch back, near where this was recorded and recording while it was: each can be
  // played beside it, in step (the same wall-clock instant), or opened on its own page at the recording's start
  stopSynced();
  const cameras = await api(`/api/v1/bodycams/recordings/${id}/nearby-cameras`);
  document.getElementById("bc-nearby").hidden = cameras.length === 0;
  document.getElementById("bc-nearby-list").replaceChildren(...cameras.map((c) => el("li", {},
    el("button", {type: "button", class: "link", "data-camera": String(c.camera_id), onclick: () => addSynced(c)},
      t("bc.sync.play", {name: c.name})), " ",
    t("bc.metres", {m: String(Math.round(c.distance_m))}), " · ",
    el("a", {href: `/cameras/${c.camera_id}?at=${encodeURIComponent(c.at)}`}, t("bc.sync.open")))));
}

// --- street cameras in step with the recording ---------------------------------------------------------------------
// The body-worn video leads: the instant it shows (its start, corrected for the device's clock, plus its position) is
// where every street camera's clip (the same archive clip the camera page plays, audited as a view) is held, within
// a third of a second; play, pause, seeking and speed follow it.
const syncBox = document.getElementById("bc-sync");
const syncTiles = document.getElementById("bc-sync-tiles");
const syncClock = document.getElementById("bc-sync-clock");
const synced = new Map();  // camera id → {video, start: Date of the clip's first frame, note}

function stopSynced() {
  for (const s of synced.values()) { s.video.pause(); URL.revokeObjectURL(s.video.src); }
  synced.clear();
  syncTiles.replaceChildren();
  syncBox.hidden = true;
  window.KUZET.synced = [];
}

const recordingInstant = () => new Date(Date.parse(current.started_at) + video.currentTime * 1000);

async function addSynced(c) {
  if (synced.has(c.camera_id)) return;
  detailError.textContent = "";
  const range = `start=${encodeURIComponent(c.at)}&end=${encodeURIComponent(c.until)}`;
  const response = await fetch(`/api/v1/cameras/${c.camera_id}/clip.mp4?${range}`, {credentials: "same-origin"});
  if (!response.ok) { detailError.textContent = t("bc.sync.nothing", {name: c.name}); return; }
  const start = new Date(response.headers.get("X-Kuzet-Start"));
  const tile = el("video", {class: "player", preload: "auto", "data-camera": String(c.camera_id)});
  tile.muted = true;
  tile.playsInline = true;
  const note = el("span", {class: "hint"});
  tile.src = URL.createObjectURL(await response.blob());
  synced.set(c.camera_id, {video: tile, start, note, name: c.name});
  syncTiles.append(el("figure", {class: "bc-sync-tile"}, tile, el("figcaption", {}, c.name, " ", note)));
  syncBox.hidden = false;
  tile.addEventListener("loadedmetadata", () => keepInStep(true), {once: true});
}

function keepInStep(force) {
  if (!synced.size || !current) return;
  const at = recordingInstant();
  syncClock.textContent = fmtTime(at, {dateStyle: "short", timeStyle: "medium"});
  const report = [];
  for (const [id, s] of synced) {
    const want = (at - s.start) / 1000;
    const outside = want < 0 || (s.video.duration && want > s.video.duration);
    s.note.textContent = outside ? t("bc.sync.no_picture") : "";
    if (outside) { s.video.pause(); report.push({camera: id, at: null}); continue; }
    if (force || Math.abs(s.video.currentTime - want) > 0.33) s.video.currentTime = want;
    s.video.playbackRate = video.playbackRate;
    if (video.paused) s.video.pause();
    else s.video.play().catch(() => {});
    report.push({camera: id, at: new Date(s.start.getTime() + s.video.currentTime * 1000).toISOString()});
  }
  window.KUZET.synced = report;  // each camera's instant on screen (for the tests)
  window.KUZET.syncedAt = at.toISOString();
}

for (const name of ["play", "pause", "seeked", "ratechange"]) video.addEventListener(name, () => keepInStep(true));
video.addEventListener("timeupdate", () => keepInStep(false));

// --- redaction: the operator reviews the faces found, adds boxes, writes the copy and discloses it ------------------
const review = document.getElementById("bc-redact-review");
const redactVideo = document.getElementById("bc-redact-video");
const canvas = document.getElementById("bc-redact-boxes");
let redaction = null, added = [], drag = null;

function resetRedaction() {
  redaction = null;
  added = [];
  review.hidden = true;
  progressBox.hidden = true;
  document.getElementById("bc-disclose").hidden = true;
  document.getElementById("bc-link").hidden = true;
  document.getElementById("bc-redacted").textContent = "";
}

const frameNow = () => (redaction ? Math.min(redaction.frames - 1, Math.floor(redactVideo.currentTime * redaction.fps))
  : 0);

function boxesNow() {
  const frame = frameNow();
  const out = [];
  for (const track of redaction.tracks) {
    if (frame < track.first || frame > track.last) continue;
    let best = null;
    for (const [at, box] of Object.entries(track.samples)) if (Number(at) <= frame) best = box;
    if (best) out.push({box: best, kept: !document.getElementById(`bc-track-${track.id}`).checked, id: track.id});
  }
  for (const a of added) if (a.from <= frame && frame <= a.to) out.push({box: a.box, kept: false, id: "+"});
  return out;
}

function draw() {
  if (!redaction) return;
  canvas.width = redaction.width;
  canvas.height = redaction.height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.lineWidth = Math.max(2, redaction.width / 320);
  ctx.font = `${Math.round(redaction.height / 24)}px sans-serif`;
  for (const {box, kept, id} of boxesNow()) {
    ctx.strokeStyle = kept ? "#2ecc71" : "#e74c3c";
    ctx.strokeRect(...box);
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillText(String(id), box[0] + 4, box[1] + redaction.height / 24);
  }
  if (drag && drag.to) {
    ctx.strokeStyle = "#f1c40f";
    ctx.strokeRect(Math.min(drag.from[0], drag.to[0]), Math.min(drag.from[1], drag.to[1]),
      Math.abs(drag.to[0] - drag.from[0]), Math.abs(drag.to[1] - drag.from[1]));
  }
  window.KUZET.redactionBoxesShown = boxesNow().length;
}

function showReview(plan) {
  redaction = plan;
  added = plan.added.map((a) => ({from: a.from, to: a.to, box: a.box}));
  review.hidden = false;
  redactVideo.src = `/api/v1/bodycams/recordings/${current.id}/video.mp4`;
  document.getElementById("bc-tracks").replaceChildren(...plan.tracks.map((track) => el("li", {},
    el("label", {}, el("input", {type: "checkbox", id: `bc-track-${track.id}`, checked: !track.excluded,
      onchange: draw}), " ", t("bc.redact.blur"), " — ",
    t("bc.redact.track", {id: String(track.id), first: String(track.first), last: String(track.last)})))));
  document.getElementById("bc-added").textContent = tn("bc.redact.added", added.length);
  document.getElementById("bc-redact-audio").checked = plan.audio;
  if (plan.state === "rendered") rendered(plan);
  window.KUZET.redaction = {id: plan.id, tracks: plan.tracks.length, state: plan.state};
  draw();
}

function rendered(plan) {
  document.getElementById("bc-redacted").textContent = t("bc.redact.done", {sha: plan.sha256});
  document.getElementById("bc-disclose").hidden = false;
}

function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [Math.round((event.clientX - rect.left) * canvas.width / rect.width),
    Math.round((event.clientY - rect.top) * canvas.height / rect.height)];
}

canvas.addEventListener("mousedown", (event) => { if (redaction) drag = {from: canvasPoint(event)}; });
canvas.addEventListener("mousemove", (event) => { if (drag) { drag.to = canvasPoint(event); draw(); } });
canvas.addEventListener("mouseup", (event) => {
  if (!drag) return;
  const to = canvasPoint(event);
  const x = Math.max(0, Math.min(drag.from[0], to[0])), y = Math.max(0, Math.min(drag.from[1], to[1]));
  const w = Math.min(redaction.width - x, Math.abs(to[0] - drag.from[0]));
  const h = Math.min(redaction.height - y, Math.abs(to[1] - drag.from[1]));
  drag = null;
  if (w >= 4 && h >= 4) {
    const from = frameNow();
    added.push({from, to: Math.min(redaction.frames - 1, from + Math.round(redaction.fps)), box: [x, y, w, h]});
    document.getElementById("bc-added").textContent = tn("bc.redact.added", added.length);
  }
  draw();
});
redactVideo.addEventListener("timeupdate", draw);
redactVideo.addEventListener("seeked", draw);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function followJob(id) {
  // finding the faces is a background job on the server: its progress is polled until the plan is ready
  const recordingId = current.id;
  for (;;) {
    const job = await api(`/api/v1/bodycams/redactions/${id}?step=5`);  // boxes every 5 frames to review
    if (!current || current.id !== recordingId) return;
    window.KUZET.redactionJob = {id: job.id, state: job.state, done: job.frames_done, total: job.frames_total};
    if (job.state !== "queued" && job.state !== "planning") {
      progressBox.hidden = true;
      if (job.state === "failed") {
        detailError.textContent = t("bc.redact.failed", {error: job.error || ""});
        return;
      }
      showReview(job);
      return;
    }
    progressBox.hidden = false;
    const bar = progressBox.querySelector("progress");
    bar.max = job.frames_total || 1;
    bar.value = Math.min(job.frames_done || 0, bar.max);
    progressBox.querySelector("span").textContent = job.state === "queued" ? t("bc.redact.queued")
      : t("bc.redact.planning", {done: String(job.frames_done || 0), total: String(job.frames_total || "?")});
    await sleep(1000);
  }
}

async function redactionCall(path, options) {
  detailError.textContent = "";
  try {
    const plan = await api(path, options);
    await followJob(plan.id);
  } catch (err) {
    showError(detailError, err);
  }
}

async function latestRedaction(id) {
  // a job started earlier (perhaps before the page was reloaded, or the server restarted) is shown again
  const jobs = await api(`/api/v1/bodycams/recordings/${id}/redactions`);
  if (jobs.length) await followJob(jobs[jobs.length - 1].id);
}

document.getElementById("bc-redact-start").addEventListener("click", () =>
  redactionCall(`/api/v1/bodycams/recordings/${current.id}/redactions`, {method: "POST"}));
document.getElementById("bc-redact-save").addEventListener("click", () => {
  const excluded = redaction.tracks.filter((track) => !document.getElementById(`bc-track-${track.id}`).checked)
    .map((track) => track.id);
  const audio = document.getElementById("bc-redact-audio").checked;
  return redactionCall(`/api/v1/bodycams/redactions/${redaction.id}`, {method: "PUT",
    body: {excluded, added, audio}});
});
document.getElementById("bc-redact-render").addEventListener("click", () =>
  redactionCall(`/api/v1/bodycams/redactions/${redaction.id}/render`, {method: "POST"}));
document.getElementById("bc-disclose").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const made = await api("/api/v1/bodycams/disclosures", {method: "POST", body: {redaction_ids: [redaction.id],
      recipient: form.recipient.value, reason: form.reason.value, hours: Number(form.hours.value)}});
    const box = document.getElementById("bc-link");
    const url = `${location.origin}${made.url}`;
    box.replaceChildren(t("bc.disclose.link", {until: fmtTime(new Date(made.expires_at))}), " ",
      el("a", {href: made.url, "data-testid": "bc-link-url"}, url));
    box.hidden = false;
  } catch (err) {
    showError(detailError, err);
  }
});

async function showTrack(id, r) {
  track = await api(`/api/v1/bodycams/recordings/${id}/track`);
  mapBox.hidden = track.length === 0;
  if (!track.length || mapBox.dataset.leaflet !== "true" || !window.L) {
    window.KUZET.bodycamTrack = track.length;
    return;
  }
  const L = window.L;
  if (!map) {
    map = L.map(mapBox, {maxZoom: 19, minZoom: 3});
    const data = await api("/api/v1/map");
    if (data.tiles) L.tileLayer(data.tiles, {maxZoom: data.max_zoom || 19}).addTo(map);
  }
  if (trackLayer) trackLayer.remove();
  if (marker) marker.remove();
  const points = track.map((p) => [p.lat, p.lon]);
  trackLayer = L.polyline(points, {color: "#2980b9", weight: 4}).addTo(map);
  marker = L.circleMarker(points[0], {radius: 7, color: "#c0392b", fillOpacity: 0.9}).addTo(map);
  map.fitBounds(trackLayer.getBounds(), {maxZoom: 17, padding: [20, 20]});
  window.KUZET.bodycamMarker = marker;
  window.KUZET.bodycamTrack = track.length;  // drawn
  const start = Date.parse(r.started_at);
  video.ontimeupdate = () => {  // the fix at the moment the video shows
    const at = start + video.currentTime * 1000;
    let best = track[0];
    for (const p of track) if (Date.parse(p.at) <= at) best = p;
    marker.setLatLng([best.lat, best.lon]);
  };
}

document.getElementById("bc-categorise").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api(`/api/v1/bodycams/recordings/${current.id}/category`, {method: "POST",
      body: {category: document.getElementById("bc-set-category").value}});
    // the list and the officer's flag first: they must not wait on the detail's track and nearby cameras
    await Promise.all([search(), flag()]);
    await openRecording(current.id);
  } catch (err) {
    showError(detailError, err);
  }
});

document.getElementById("bc-hold").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    await api(`/api/v1/bodycams/recordings/${current.id}/holds`, {method: "POST",
      body: {reason: form.reason.value}});
    form.reset();
    await openRecording(current.id);
  } catch (err) {
    showError(detailError, err);
  }
});

document.getElementById("bc-search").addEventListener("submit", search);
await Promise.all([loadCategories(), loadDevices()]);
await Promise.all([search(), flag()]);
// ?recording=ID (from a camera's timeline): that recording opened at once.
const wantedRecording = Number(new URLSearchParams(location.search).get("recording"));
if (wantedRecording > 0) openRecording(wantedRecording).catch((err) => showError(error, err));
window.KUZET.bodycamsReady = true;
