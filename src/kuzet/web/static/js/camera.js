// The camera page: live view, archive playback from any instant at 1×–16×, the timeline, evidence export.
import {api, fmtTime, t} from "./api.js";
import {LivePlayer} from "./live.js";
import {Timeline} from "./timeline.js";

const root = document.getElementById("camera-page");
const cameraId = Number(root.dataset.camera);
const rights = root.dataset.rights.split(",");
const video = document.getElementById("video");
const message = document.getElementById("player-message");
const positionLabel = document.getElementById("position");
const speed = document.getElementById("speed");
const streamSelect = document.getElementById("stream");
let live = null;
let archive = null;  // {start: Date of the clip's first frame, until: Date}

const show = (text) => { message.textContent = text || ""; message.hidden = !text; };

function startLive() {
  archive = null;
  window.KUZET.mode = "live";
  document.getElementById("go-live").classList.add("active");
  live?.stop();
  if (!rights.includes("view_live")) { show(t("common.not_found")); return; }
  live = new LivePlayer(video, cameraId, {stream: streamSelect ? streamSelect.value : "main", onMessage: show});
  live.start();
  video.playbackRate = 1;
}

const CLIP_SECONDS = 60;

async function playArchive(at) {
  if (!rights.includes("view_archive")) return;
  live?.stop();
  live = null;
  window.KUZET.position = null;
  archive = null;  // until the new clip is in, the one still playing must not report its position
  window.KUZET.mode = "archive";
  document.getElementById("go-live").classList.remove("active");
  const until = new Date(at.getTime() + CLIP_SECONDS * 1000);
  const response = await fetch(`/api/v1/cameras/${cameraId}/clip.mp4?start=${at.toISOString()}&end=${until.toISOString()}`,
    {credentials: "same-origin"});
  if (!response.ok) { show(t("camera.offline")); return; }
  show(null);
  const start = new Date(response.headers.get("X-Kuzet-Start"));
  const blob = await response.blob();
  if (video.src.startsWith("blob:")) URL.revokeObjectURL(video.src);
  archive = {start, until, wanted: at};
  video.src = URL.createObjectURL(blob);
  video.addEventListener("loadedmetadata", () => {
    video.currentTime = Math.max(0, (at - start) / 1000);  // the instant itself, not the keyframe before it
    video.playbackRate = Number(speed.value);
    video.play().catch(() => {});
  }, {once: true});
  video.addEventListener("seeked", showPosition, {once: true});
  timeline.setPosition(at);
}

video.addEventListener("ended", () => { if (archive) playArchive(archive.until); });
video.addEventListener("timeupdate", showPosition);

function showPosition() {
  if (window.KUZET.mode === "archive" && !archive) return;  // the clip is still loading
  const clock = video.kuzetClock;
  const position = archive ? new Date(archive.start.getTime() + video.currentTime * 1000)
    : clock ? new Date(clock.wall + (video.currentTime - clock.media) * 1000) : new Date();
  window.KUZET.position = position.toISOString();
  positionLabel.textContent = fmtTime(position);
  if (archive) timeline.setPosition(position);
}
speed.addEventListener("change", () => { if (archive) video.playbackRate = Number(speed.value); });
streamSelect?.addEventListener("change", () => { if (!archive) startLive(); });
document.getElementById("go-live").addEventListener("click", startLive);

const timeline = new Timeline(document.getElementById("timeline"), cameraId, {onSeek: playArchive});
window.KUZET.seek = (iso) => playArchive(new Date(iso));
window.KUZET.timeline = timeline;
document.querySelectorAll(".timeline-zoom button").forEach((b) => b.addEventListener("click", () => timeline.setSpan(Number(b.dataset.span))));
for (const [id, dir] of [["next-gap", 1], ["prev-gap", -1]]) {
  document.getElementById(id).addEventListener("click", () => {
    const now = archive ? archive.start.getTime() + video.currentTime * 1000 : Date.now();
    const gap = timeline.gapNear(now, dir);
    if (gap) playArchive(new Date(Math.max(gap.start - 5000, 0)));
  });
}
timeline.load();
setInterval(() => { if (!archive) { timeline.end = Date.now() + 0.02 * timeline.span; timeline.load(); } }, 10000);

async function health() {
  try {
    const h = await api(`/api/v1/cameras/${cameraId}/health`);
    const badge = document.getElementById("camera-state");
    badge.textContent = t(`state.${h.state}`);
    badge.className = `badge state-${h.state}`;
  } catch (err) { /* not critical */ }
}
health();
setInterval(health, 10000);

const form = document.getElementById("export-form");
if (form) {
  const now = new Date();
  const iso = (d) => d.toISOString().slice(0, 19);
  form.start.value = iso(new Date(now - 10 * 60 * 1000));
  form.end.value = iso(now);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const state = document.getElementById("export-state");
    state.textContent = t("camera.export.running");
    try {
      const made = await api("/api/v1/exports", {method: "POST", body: {
        cameras: [cameraId], start: form.start.value + "Z", end: form.end.value + "Z", reason: form.reason.value}});
      for (;;) {
        const e = await api(`/api/v1/exports/${made.id}`);
        if (e.state === "done") { state.innerHTML = `<a href="${e.bundle}">${t("camera.export.ready")}</a>`; break; }
        if (e.state === "failed") { state.textContent = `${t("common.error")}: ${e.error}`; break; }
        await new Promise((r) => setTimeout(r, 1000));
      }
    } catch (err) { state.textContent = `${t("common.error")}: ${err.message}`; }
  });
}

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
