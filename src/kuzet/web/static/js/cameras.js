import {allPages, api, el, label, t} from "./api.js";

const body = document.querySelector("#camera-table tbody");
const search = document.getElementById("camera-search");
let cameras = [];

function render() {
  const q = search.value.trim().toLowerCase();
  body.replaceChildren(...cameras.filter((c) => !q || c.name.toLowerCase().includes(q) || (c.place_name || "").toLowerCase().includes(q))
    .map((c) => el("tr", {"data-camera": c.id},
      el("td", {}, el("a", {href: `/cameras/${c.id}`}, c.name)), el("td", {}, c.place_name || ""), el("td", {"data-kind": c.kind}, label("camera_kind", c.kind)),
      el("td", {class: `state-${c.state || "unknown"}`, "data-state": c.state || ""}, c.state ? t(`state.${c.state}`) : "…"))));
  document.getElementById("camera-empty").hidden = cameras.length > 0;
}

async function load() {
  cameras = await allPages("/api/v1/cameras");
  render();
  await Promise.all(cameras.map(async (c) => {
    try { c.state = (await api(`/api/v1/cameras/${c.id}/health`)).state; } catch (err) { c.state = "error"; }
  }));
  render();
}
search.addEventListener("input", render);
load();
setInterval(load, 30000);
