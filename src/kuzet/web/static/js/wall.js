// The video wall: 1/4/9/16 tiles of sub streams, each from the camera's single upstream; saved layouts per user.
import {allPages, api, el, t} from "./api.js";
import {LivePlayer} from "./live.js";

const wall = document.getElementById("wall");
const grid = document.getElementById("grid");
const layouts = document.getElementById("layouts");
let cameras = [];
let tiles = [];

function tile(index, cameraId) {
  const video = el("video", {muted: "", playsinline: "", autoplay: "", "data-testid": "tile-video"});
  video.muted = true;
  const note = el("p", {class: "overlay", hidden: ""});
  const select = el("select", {}, el("option", {value: ""}, t("wall.choose")),
    ...cameras.map((c) => el("option", {value: c.id}, c.name)));
  select.value = cameraId ? String(cameraId) : "";
  const box = el("div", {class: "tile", "data-tile": index}, video, note, el("div", {class: "tile-bar"}, select));
  const state = {box, video, select, player: null};
  const play = () => {
    state.player?.stop();
    state.player = null;
    note.hidden = true;
    if (!select.value) return;
    state.player = new LivePlayer(video, Number(select.value), {stream: "sub", onMessage: (m) => { note.textContent = m || ""; note.hidden = !m; }});
    state.player.start();
  };
  select.addEventListener("change", play);
  video.addEventListener("dblclick", () => { if (select.value) location.href = `/cameras/${select.value}`; });
  play();
  return state;
}

function build(n, ids) {
  tiles.forEach((s) => s.player?.stop());
  wall.className = `wall grid-${Math.sqrt(n)}`;
  tiles = Array.from({length: n}, (_, i) => tile(i, ids[i]));
  wall.replaceChildren(...tiles.map((s) => s.box));
}

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
  const name = document.getElementById("layout-name").value.trim() || `${grid.value}`;
  await api("/api/v1/layouts", {method: "POST", body: {name, grid: Number(grid.value),
    cameras: tiles.map((s) => (s.select.value ? Number(s.select.value) : null))}});
  await loadLayouts();
});

cameras = await allPages("/api/v1/cameras");
const wanted = Number(new URLSearchParams(location.search).get("grid") || 4);
grid.value = String([1, 4, 9, 16].includes(wanted) ? wanted : 4);
build(Number(grid.value), cameras.map((c) => c.id));
loadLayouts();
