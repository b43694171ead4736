// The resident portal: my cameras live, and who viewed them, when and on what basis (from the audit log).
import {allPages, api, el, fmtTime, t} from "./api.js";
import {LivePlayer} from "./live.js";

const cameras = await allPages("/api/v1/cameras");
const box = document.getElementById("my-cameras");
for (const c of cameras) {
  const video = el("video", {muted: "", playsinline: "", autoplay: ""});
  video.muted = true;
  box.append(el("div", {class: "tile"}, video, el("div", {class: "tile-bar"}, el("a", {href: `/cameras/${c.id}`}, c.name))));
  new LivePlayer(video, c.id, {stream: "sub"}).start();
}
const rows = [];
for (const c of cameras) {
  const log = await api(`/api/v1/audit?camera=${c.id}&action=video.&limit=200`);
  for (const r of log.items) rows.push({...r, camera: c.name});
}
rows.sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
document.querySelector("#access-log tbody").replaceChildren(...rows.map((r) => el("tr", {},
  el("td", {}, fmtTime(new Date(r.at))), el("td", {class: "actor"}, r.actor_name), el("td", {}, t(`action.${r.action}`)),
  el("td", {}, r.camera), el("td", {}, r.legal_basis || ""))));
