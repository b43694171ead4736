// The field technician's page (phones): cameras offline now, longest first, with the address, the entrance or yard,
// since when and why, and a map link — to plan the day's visits. Refreshes every minute and on demand.
import {api, el, fmtTime, t, tn} from "./api.js";

const REFRESH_MS = 60000;
const list = document.getElementById("field-list");
const empty = document.getElementById("field-empty");
const errorLine = document.getElementById("field-error");
const count = document.getElementById("field-count");
window.KUZET.field = {loads: 0};

function since(iso) {
  const hours = (Date.now() - new Date(iso).getTime()) / 3600000;
  return hours >= 48 ? tn("field.days", Math.floor(hours / 24)) : tn("field.hours", Math.max(0, Math.floor(hours)));
}

function card(c) {
  const hasCoords = c.lat !== null && c.lon !== null;
  return el("article", {class: "card", "data-testid": "offline-camera", "data-camera": c.camera_id},
    el("h2", {}, c.name),
    el("p", {class: "big"}, c.address || "—"),
    c.entrance ? el("p", {}, `${t(`field.site.${c.entrance_kind}`)}: `, el("strong", {}, c.entrance)) : "",
    c.district ? el("p", {class: "hint"}, c.district) : "",
    el("p", {}, `${t("field.since")}: `, el("strong", {}, fmtTime(c.since)), ` (${since(c.since)})`),
    el("p", {}, `${t("field.reason")}: ${t(`gap.${c.reason}`)}`, c.message ? el("br") : "",
      c.message ? el("span", {class: "hint"}, c.message) : ""),
    c.last_recorded_at ? el("p", {class: "hint"}, `${t("field.last_recorded")}: ${fmtTime(c.last_recorded_at)}`) : "",
    hasCoords ? el("p", {class: "map-links"},
      el("a", {class: "button big", href: `geo:${c.lat},${c.lon}?q=${c.lat},${c.lon}`}, t("field.map"))) : "",
    el("p", {}, el("a", {href: `/cameras/${c.camera_id}`}, t("field.open_camera"))));
}

async function load() {
  try {
    const out = await api("/api/v1/field/offline");
    window.KUZET.field.loads += 1;
    errorLine.textContent = "";
    empty.hidden = out.items.length > 0;
    count.textContent = `${tn("field.count", out.total)} · ${fmtTime(new Date())}`;
    list.replaceChildren(...out.items.map(card));
  } catch (err) {
    errorLine.textContent = `${t("common.error")}: ${err.message}`;
  }
}

document.getElementById("field-refresh").addEventListener("click", load);
load();
setInterval(load, REFRESH_MS);
