// The video wall: 1/4/9/16 tiles of sub streams (each from the camera's single upstream) sized to fit the window
// without scrolling; each tile names its camera, its state and the latency of the picture, and says "no signal" or
// "offline" over a camera that sends nothing. Double-click a tile to enlarge it (again to return); fullscreen;
// saved layouts per user.
import {allPages, api, el, fmtNumber, fmtTime, label, t} from "./api.js";
import {LivePlayer} from "./live.js";

const wall = document.getElementById("wall");
const grid = document.getElementById("grid");
const layouts = document.getElementById("layouts");
const wallMessage = document.getElementById("wall-message");
const STALL_SECONDS = 6;  // no new picture for this long: no signal
let cameras = [];
let tiles = [];
window.KUZET.wall = {tiles: () => tiles.map((s) => ({camera: s.cameraId, state: s.state, overlay: s.overlayText(),
  latency: s.latency}))};

class Tile {
  constructor(index, cameraId) {
    this.index = index;
    this.video = el("video", {muted: "", playsinline: "", autoplay: "", "data-testid": "tile-video"});
    this.video.muted = true;
    this.name = el("span", {class: "tile-name", "data-testid": "tile-name"});
    this.stateBadge = el("span", {class: "tile-state", "data-testid": "tile-state"});
    this.latencyNode = el("span", {class: "tile-latency", "data-testid": "tile-latency"});
    this.overlay = el("p", {class: "tile-overlay", "data-testid": "tile-overlay", hidden: ""});
    this.select = el("select", {"aria-label": t("wall.choose")}, el("option", {value: ""}, t("wall.choose")),
      ...cameras.map((c) => el("option", {value: c.id}, c.name)));
    this.open = el("a", {class: "button", href: "#", hidden: ""}, t("wall2.open_camera"));
    this.box = el("div", {class: "tile", "data-tile": index, "data-testid": "tile", tabindex: "0"}, this.video,
      el("div", {class: "tile-top"}, this.name, this.stateBadge, this.latencyNode), this.overlay,
      el("div", {class: "tile-bar"}, this.select, " ", this.open));
    this.select.addEventListener("change", () => this.play(this.select.value ? Number(this.select.value) : null));
    this.box.addEventListener("dblclick", () => enlarge(this));
    this.box.addEventListener("keydown", (e) => { if (e.key === "Enter" && e.target === this.box) enlarge(this); });
    this.video.addEventListener("timeupdate", () => { this.lastProgress = Date.now(); this.refresh(); });
    this.player = null;
    this.play(cameraId || null);
  }

  play(cameraId) {
    this.player?.stop();
    this.player = null;
    this.cameraId = cameraId;
    this.state = null;
    this.message = null;
    this.lastProgress = null;
    this.startedAt = Date.now();
    this.select.value = cameraId ? String(cameraId) : "";
    const camera = cameras.find((c) => c.id === cameraId);
    this.name.textContent = camera ? camera.name : "";
    this.name.title = camera ? `${camera.name}${camera.place_name ? ` — ${camera.place_name}` : ""}` : "";
    this.open.hidden = !camera;
    this.open.href = camera ? `/cameras/${camera.id}` : "#";
    this.box.classList.toggle("empty", !camera);
    this.box.dataset.camera = camera ? String(camera.id) : "";
    if (camera) {
      this.player = new LivePlayer(this.video, camera.id, {stream: "sub", onMessage: (m) => { this.message = m; this.refresh(); }});
      this.player.start();
      this.health();
    }
    this.refresh();
  }

  async health() {
    const id = this.cameraId;
    if (!id) return;
    try {
      const h = await api(`/api/v1/cameras/${id}/health`);
      if (id !== this.cameraId) return;
      this.state = h.state;
      this.reason = h.reason;
      this.lastFrame = h.last_frame_at;
    } catch (err) { if (id === this.cameraId) this.state = "error"; }
    this.refresh();
  }

  /** What the overlay says, or "" when the picture is fine. */
  overlayText() {
    if (!this.cameraId) return "";
    const stalled = this.lastProgress ? Date.now() - this.lastProgress > STALL_SECONDS * 1000
      : Date.now() - this.startedAt > STALL_SECONDS * 1000;
    if (this.state === "disabled") return t("wall2.offline");
    if (this.state === "offline" || this.state === "error" || this.message || (stalled && this.state !== "connecting")) {
      return t("wall2.no_signal");
    }
    if (!this.lastProgress) return t("wall2.connecting");
    return "";
  }

  refresh() {
    const state = this.state || (this.cameraId ? "connecting" : "");
    this.stateBadge.textContent = state ? label("camera_state", state) : "";
    this.stateBadge.className = `tile-state state-${state}`;
    this.stateBadge.hidden = !state;
    const text = this.overlayText();
    const detail = text && text !== t("wall2.connecting") && this.lastFrame
      ? t("wall2.last_picture", {when: fmtTime(new Date(this.lastFrame))}) : "";
    if (this.overlay.dataset.text !== `${text}|${detail}`) {
      this.overlay.dataset.text = `${text}|${detail}`;
      this.overlay.replaceChildren(text, ...(detail ? [el("small", {}, detail)] : []));
    }
    this.overlay.hidden = !text;
    this.box.dataset.overlay = text ? (this.state === "disabled" ? "offline" : text === t("wall2.connecting") ? "connecting" : "no_signal") : "";
    const latency = !text && this.player ? this.player.latency() : null;
    this.latency = latency;
    this.latencyNode.textContent = latency === null || latency === undefined || latency < 0 ? ""
      : t("wall2.latency", {s: fmtNumber(latency, {maximumFractionDigits: 1, minimumFractionDigits: 1})});
  }

  stop() { this.player?.stop(); this.player = null; }
}

function enlarge(tile) {
  const big = !tile.box.classList.contains("big");
  tiles.forEach((s) => s.box.classList.remove("big"));
  tile.box.classList.toggle("big", big);
  wall.classList.toggle("enlarged", big);
  window.KUZET.wall.enlarged = big ? tile.index : null;
  fit();
}

function build(n, ids) {
  tiles.forEach((s) => s.stop());
  wall.classList.remove("enlarged");
  wall.dataset.grid = String(n);
  tiles = Array.from({length: n}, (_, i) => new Tile(i, ids[i]));
  wall.replaceChildren(...tiles.map((s) => s.box));
  fit();
}

/** Tiles as large as the window allows with all of them in view: 16:9 each, n×n, no scrolling. */
function fit() {
  const n = tiles.length || 1;
  const cols = wall.classList.contains("enlarged") ? 1 : Math.round(Math.sqrt(n));
  const gap = 4;
  const full = document.fullscreenElement === wall;
  const width = full ? window.innerWidth - 8 : wall.clientWidth;
  const top = full ? 4 : wall.getBoundingClientRect().top + window.scrollY;
  const height = Math.max(120, (full ? window.innerHeight - 8 : window.innerHeight - top - 20));
  const tileW = Math.floor(Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (cols - 1)) / cols) * 16 / 9));
  wall.style.gridTemplateColumns = `repeat(${cols}, ${Math.max(80, tileW)}px)`;
}
window.addEventListener("resize", fit);
document.addEventListener("fullscreenchange", () => { wall.classList.toggle("is-fullscreen", document.fullscreenElement === wall); fit(); });
const fullscreenButton = document.getElementById("wall-fullscreen");
fullscreenButton.hidden = !document.fullscreenEnabled;
fullscreenButton.addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else wall.requestFullscreen?.().catch(() => {});
});

async function loadLayouts() {
  const saved = await api("/api/v1/layouts");
  layouts.replaceChildren(el("option", {value: ""}, "—"), ...saved.map((l) => el("option", {value: JSON.stringify(l)}, l.name)));
}

grid.addEventListener("change", () => build(Number(grid.value), cameras.map((c) => c.id)));
layouts.addEventListener("change", () => {
  if (!layouts.value) return;
  const l = JSON.parse(layouts.value);
  grid.value = String(l.grid);
  build(l.grid, l.cameras);
});
document.getElementById("save-layout").addEventListener("click", async () => {
  const name = document.getElementById("layout-name").value.trim() || t("wall2.layout_default", {n: grid.value});
  try {
    await api("/api/v1/layouts", {method: "POST", body: {name, grid: Number(grid.value),
      cameras: tiles.map((s) => s.cameraId || null)}});
    wallMessage.textContent = t("wall2.saved", {name});
    await loadLayouts();
  } catch (err) { wallMessage.textContent = `${t("common.error")}: ${err.message}`; }
});

cameras = (await allPages("/api/v1/cameras")).filter((c) => (c.rights || []).includes("view_live"));
const wanted = Number(new URLSearchParams(location.search).get("grid") || 4);
grid.value = String([1, 4, 9, 16].includes(wanted) ? wanted : 4);
build(Number(grid.value), cameras.map((c) => c.id));
loadLayouts();
setInterval(() => tiles.forEach((s) => s.refresh()), 1000);
setInterval(() => tiles.forEach((s) => s.health()), 10000);
