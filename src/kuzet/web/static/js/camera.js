// The camera page, like a VMS: live view or the archive from any instant at 1×–16×, the picture sized to the window
// so the controls and the timeline always stay in view, fullscreen, the keyboard (space, ←/→, Shift+←/→, +/−, F, L),
// the timeline with a legend drawn from its own colours, and the evidence export in the page's time zone.
import {api, el, fmtTime, label, t} from "./api.js";
import {LivePlayer} from "./live.js";
import {showSigningKey} from "./signing.js";
import {Timeline, timelineLegend} from "./timeline.js";
import {fromZoned, zoneLabel, zonedInput} from "./zone.js";

const root = document.getElementById("camera-page");
const cameraId = Number(root.dataset.camera);
const rights = root.dataset.rights.split(",");
const stage = document.getElementById("stage");
const player = document.getElementById("player");
const video = document.getElementById("video");
const message = document.getElementById("player-message");
const positionLabel = document.getElementById("position");
const modeBadge = document.getElementById("mode");
const speed = document.getElementById("speed");
const streamSelect = document.getElementById("stream");
const STEP_SECONDS = 10;
let live = null;
let archive = null;  // {start: Date of the clip's first frame, until: Date}

const show = (text) => { message.textContent = text || ""; message.hidden = !text; };
const kind = document.getElementById("camera-kind");
kind.textContent = label("camera_kind", kind.dataset.kind);

function setMode(mode) {
  window.KUZET.mode = mode;
  modeBadge.textContent = t(mode === "live" ? "video.mode.live" : "video.mode.archive");
  modeBadge.className = `mode-badge ${mode}`;
  document.getElementById("go-live").classList.toggle("active", mode === "live");
}

function startLive() {
  archive = null;
  setMode("live");
  live?.stop();
  if (!rights.includes("view_live")) { show(t("common.not_found")); return; }
  live = new LivePlayer(video, cameraId, {stream: streamSelect ? streamSelect.value : "main", onMessage: show});
  live.start();
  video.defaultPlaybackRate = 1;
  video.playbackRate = 1;
  timeline.setPosition(null);
}

const CLIP_SECONDS = 60;

async function playArchive(at) {
  if (!rights.includes("view_archive")) { show(t("camera.no_archive")); return; }
  if (at.getTime() > Date.now() - 1000) { startLive(); return; }  // the future is live
  live?.stop();
  live = null;
  window.KUZET.position = null;
  archive = null;  // until the new clip is in, the one still playing must not report its position
  setMode("archive");
  const until = new Date(at.getTime() + CLIP_SECONDS * 1000);
  const response = await fetch(`/api/v1/cameras/${cameraId}/clip.mp4?start=${at.toISOString()}&end=${until.toISOString()}`,
    {credentials: "same-origin"});
  if (!response.ok) { show(t("video.nothing_recorded")); timeline.setPosition(at); return; }
  show(null);
  const start = new Date(response.headers.get("X-Kuzet-Start"));
  const blob = await response.blob();
  if (video.src.startsWith("blob:")) URL.revokeObjectURL(video.src);
  archive = {start, until, wanted: at};
  applySpeed();
  video.src = URL.createObjectURL(blob);
  video.addEventListener("loadedmetadata", () => {
    video.currentTime = Math.max(0, (at - start) / 1000);  // the instant itself, not the keyframe before it
    applySpeed();
    video.play().catch(() => {});
  }, {once: true});
  video.addEventListener("seeked", showPosition, {once: true});
  timeline.setPosition(at);
}

video.addEventListener("ended", () => { if (archive) playArchive(archive.until); });
video.addEventListener("timeupdate", showPosition);

/** The instant on screen: the archive's position, or the capture time of the live frame. */
function current() {
  const clock = video.kuzetClock;
  if (archive) return new Date(archive.start.getTime() + video.currentTime * 1000);
  return clock ? new Date(clock.wall + (video.currentTime - clock.media) * 1000) : new Date();
}

function showPosition() {
  if (window.KUZET.mode === "archive" && !archive) return;  // the clip is still loading
  const position = current();
  window.KUZET.position = position.toISOString();
  positionLabel.textContent = fmtTime(position, {dateStyle: "short", timeStyle: "medium"});
  positionLabel.title = zoneLabel(position);
  if (archive) timeline.setPosition(position);
}
/** The chosen speed holds for the archive whatever is loading: a new clip's load resets playbackRate to the default. */
function applySpeed() {
  if (window.KUZET.mode !== "archive") return;
  video.defaultPlaybackRate = Number(speed.value);
  video.playbackRate = Number(speed.value);
}
speed.addEventListener("change", applySpeed);
streamSelect?.addEventListener("change", () => { if (!archive) startLive(); });
document.getElementById("go-live").addEventListener("click", startLive);

// --- play/pause, steps, gaps ------------------------------------------------------------------------------------------
function togglePlay() {
  if (video.paused) video.play().catch(() => {});
  else video.pause();
}
const playButton = document.getElementById("play");
video.addEventListener("play", () => playButton.classList.remove("paused"));
video.addEventListener("pause", () => playButton.classList.add("paused"));
document.getElementById("play").addEventListener("click", togglePlay);

/** ±seconds from what is on screen: inside the loaded clip a seek, else the archive from there. */
function step(seconds) {
  const target = new Date(current().getTime() + seconds * 1000);
  if (archive && target >= archive.start && target < archive.until && video.duration) {
    video.currentTime = Math.max(0, (target - archive.start) / 1000);
    showPosition();
  } else playArchive(target);
}

function jumpToGap(direction) {
  const gap = timeline.gapNear(current().getTime(), direction);
  if (!gap) { show(t(direction > 0 ? "video.no_next_gap" : "video.no_prev_gap")); setTimeout(() => show(null), 2000); return; }
  // Just before the gap starts, to see how the picture was lost.
  playArchive(new Date(Math.max(gap.start - 5000, 0)));
}
document.getElementById("back").addEventListener("click", () => step(-STEP_SECONDS));
document.getElementById("forward").addEventListener("click", () => step(STEP_SECONDS));
document.getElementById("next-gap").addEventListener("click", () => jumpToGap(1));
document.getElementById("prev-gap").addEventListener("click", () => jumpToGap(-1));

// --- the timeline ---------------------------------------------------------------------------------------------------
const timeline = new Timeline(document.getElementById("timeline"), cameraId, {onSeek: playArchive,
  onBodycam: rights.includes("view_archive") ? openBodycam : null});
window.KUZET.seek = (iso) => playArchive(new Date(iso));
window.KUZET.timeline = timeline;
document.getElementById("legend").replaceChildren(timelineLegend());
document.querySelectorAll(".timeline-zoom [data-span]").forEach((b) => b.addEventListener("click", () => timeline.setSpan(Number(b.dataset.span))));
document.getElementById("zoom-in").addEventListener("click", () => timeline.zoomBy(0.5));
document.getElementById("zoom-out").addEventListener("click", () => timeline.zoomBy(2));
// Without the archive right there is no recorded time to draw (the API would answer 404): no timeline at all.
const mayArchive = rights.includes("view_archive");
if (mayArchive) timeline.load();
else document.getElementById("timeline-box").hidden = true;
setInterval(() => {
  if (mayArchive && !archive) { timeline.end = Date.now() + 0.02 * timeline.span; timeline.load(); }
}, 10000);

// --- fullscreen and the picture sized to the window ------------------------------------------------------------------
const fullscreenButton = document.getElementById("fullscreen");
function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else stage.requestFullscreen?.().catch(() => {});
}
fullscreenButton.addEventListener("click", toggleFullscreen);
fullscreenButton.hidden = !document.fullscreenEnabled;
document.addEventListener("fullscreenchange", () => {
  stage.classList.toggle("is-fullscreen", document.fullscreenElement === stage);
  fit();
});
video.addEventListener("dblclick", toggleFullscreen);

/** The picture takes what the window leaves once the controls and the timeline have their room: all of it stays in
 * view at 1366×768 and on a phone, without scrolling. */
function fit() {
  if (document.fullscreenElement === stage) {
    player.style.maxWidth = "";
    video.style.maxHeight = "";
    return;
  }
  const top = stage.getBoundingClientRect().top + window.scrollY;
  const below = stage.offsetHeight - player.offsetHeight;
  const room = Math.max(160, Math.floor(window.innerHeight - top - below - 12));
  // The size set here changes the body, which calls fit again: a change under 2 px is rounding, and acting on it
  // would make the page shake by a pixel for ever (nothing under it could be clicked).
  if (Math.abs(room - (parseFloat(video.style.maxHeight) || 0)) < 2) return;
  video.style.maxHeight = `${room}px`;
  player.style.maxWidth = `${Math.max(284, Math.floor(room * 16 / 9))}px`;
}
new ResizeObserver(fit).observe(document.body);
window.addEventListener("resize", fit);
fit();

// --- the keyboard -----------------------------------------------------------------------------------------------------
document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target instanceof HTMLElement && e.target.closest("input, select, textarea, [contenteditable], summary, dialog")) return;
  const keys = {
    " ": togglePlay, ArrowLeft: () => (e.shiftKey ? jumpToGap(-1) : step(-STEP_SECONDS)),
    ArrowRight: () => (e.shiftKey ? jumpToGap(1) : step(STEP_SECONDS)),
    "+": () => timeline.zoomBy(0.5), "=": () => timeline.zoomBy(0.5), "-": () => timeline.zoomBy(2),
    f: toggleFullscreen, F: toggleFullscreen, l: startLive, L: startLive,
  };
  const action = keys[e.key];
  if (!action || (e.key === " " && e.target instanceof HTMLButtonElement)) return;
  e.preventDefault();
  action();
  window.KUZET.lastKey = e.key;
});

// --- state ----------------------------------------------------------------------------------------------------------
async function health() {
  try {
    const h = await api(`/api/v1/cameras/${cameraId}/health`);
    const badge = document.getElementById("camera-state");
    badge.textContent = label("camera_state", h.state);
    badge.className = `badge state-${h.state}`;
    badge.dataset.state = h.state;
  } catch (err) { /* not critical */ }
}
health();
setInterval(health, 10000);

// --- evidence export, in the page's time zone -------------------------------------------------------------------------
const form = document.getElementById("export-form");
if (form) {
  showSigningKey(document.getElementById("signing-key"));
  const now = new Date();
  document.getElementById("export-zone").textContent = t("video.export.zone", {zone: zoneLabel(now)});
  form.start.value = zonedInput(new Date(now - 10 * 60 * 1000));
  form.end.value = zonedInput(now);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const state = document.getElementById("export-state");
    const start = fromZoned(form.start.value), end = fromZoned(form.end.value);
    if (!start || !end || end <= start) { state.textContent = t("video.export.bad_window"); return; }
    state.textContent = t("camera.export.running");
    try {
      const made = await api("/api/v1/exports", {method: "POST", body: {
        cameras: [cameraId], start: start.toISOString(), end: end.toISOString(), reason: form.reason.value}});
      for (;;) {
        const e = await api(`/api/v1/exports/${made.id}`);
        if (e.state === "done") { state.replaceChildren(el("a", {href: e.bundle}, t("camera.export.ready"))); break; }
        if (e.state === "failed") { state.textContent = `${t("common.error")}: ${e.error}`; break; }
        await new Promise((r) => setTimeout(r, 1000));
      }
    } catch (err) { state.textContent = `${t("common.error")}: ${err.message}`; }
  });
}

// --- body-worn and dash camera recordings made near the camera, played in step with it ------------------------------
// The camera leads: the instant it shows (its archive's position) is where the recording is held, within 0.4 s;
// play, pause and speed follow it. Both clocks are the server's (the device's clock was corrected at ingest).
const bodycamPanel = document.getElementById("bodycam-panel");
const bodycamVideo = document.getElementById("bodycam-video");
const bodycamMessage = document.getElementById("bodycam-message");
let bodycam = null;  // {id, start: Date, end: Date}

function openBodycam(recording, at) {
  bodycam = {id: recording.id, start: new Date(recording.started_at), end: new Date(recording.ended_at)};
  bodycamPanel.hidden = false;
  document.getElementById("bodycam-title").textContent = `${t(recording.device_kind === "dash" ? "video.bodycam.dash"
    : "video.bodycam.body")} ${recording.serial} · ${fmtTime(bodycam.start)} … ${fmtTime(bodycam.end)}`;
  const link = document.getElementById("bodycam-open");
  link.href = `/bodycams?recording=${recording.id}`;
  bodycamVideo.src = `/api/v1/bodycams/recordings/${recording.id}/video.mp4`;
  bodycamVideo.addEventListener("loadedmetadata", () => followCamera(true), {once: true});
  playArchive(at);
}

function followCamera(force = false) {
  if (!bodycam || !bodycamVideo.readyState) return;
  const at = window.KUZET.mode === "archive" && archive ? current() : null;
  const inside = at && at >= bodycam.start && at < bodycam.end;
  bodycamMessage.hidden = Boolean(inside);
  bodycamMessage.textContent = inside ? "" : t("video.bodycam.not_now");
  if (!inside) { bodycamVideo.pause(); window.KUZET.bodycamAt = null; return; }
  const wanted = (at - bodycam.start) / 1000;
  if (force || Math.abs(bodycamVideo.currentTime - wanted) > 0.4) bodycamVideo.currentTime = wanted;
  bodycamVideo.playbackRate = video.playbackRate;
  if (video.paused !== bodycamVideo.paused) (video.paused ? bodycamVideo.pause() : bodycamVideo.play().catch(() => {}));
  window.KUZET.bodycamAt = new Date(bodycam.start.getTime() + wanted * 1000).toISOString();
}
for (const name of ["timeupdate", "seeked", "play", "pause", "ratechange"]) video.addEventListener(name, () => followCamera());
bodycamVideo.addEventListener("timeupdate", () => {
  if (bodycam && bodycamVideo.readyState) {
    window.KUZET.bodycamShown = new Date(bodycam.start.getTime() + bodycamVideo.currentTime * 1000).toISOString();
  }
});
document.getElementById("bodycam-close").addEventListener("click", () => {
  bodycam = null;
  bodycamVideo.pause();
  bodycamVideo.removeAttribute("src");
  bodycamPanel.hidden = true;
});

// ?at=ISO (from event search, incidents): open the archive at that instant instead of live.
const wantedAt = new URLSearchParams(location.search).get("at");
const at = wantedAt ? new Date(wantedAt) : null;
if (at && !Number.isNaN(at.getTime())) {
  if (rights.includes("view_archive")) {
    timeline.span = 600 * 1000;  // ten minutes around the instant
    timeline.end = at.getTime() + timeline.span / 2;
    timeline.load();
    playArchive(at);
  } else show(t("camera.no_archive"));
} else startLive();

const analysis = document.getElementById("analysis");
if (analysis) import("./zones.js").then((m) => m.analysisPanel(analysis, cameraId));
