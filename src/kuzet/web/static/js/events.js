// Event search: camera, time window, kind, label, plate (prefix or fuzzy); each result opens the camera's archive at
// its instant (/cameras/{id}?at=ISO). The form's state is kept in the address, so a search can be shared.
import {allPages, api, el, t} from "./api.js";
import {fmtDuration, isoOf, localInput, showError, when} from "./ops.js";

const PAGE = 50;
const form = document.getElementById("event-form");
const body = document.querySelector("#events tbody");
const summary = document.getElementById("event-summary");
const errorLine = document.getElementById("event-error");
const more = document.getElementById("event-more");
let offset = 0;
let query = "";

function describe(e) {
  const parts = [t(`ev.kind.${e.kind}`)];
  if (e.label && e.kind !== "plate") parts.push(t(`ev.label.${e.label}`));
  if (e.plate) parts.push(e.plate);
  if (e.score !== null && e.score !== undefined) parts.push(`${Math.round(e.score * 100)} %`);
  return parts.join(" · ");
}

function row(e) {
  const at = new Date(e.start_at).toISOString();
  const pictures = el("td", {class: "pictures"});
  if (e.snapshot_url) pictures.append(el("img", {class: "thumb", src: e.snapshot_url, loading: "lazy", alt: t("ev.picture")}));
  if (e.crop_url) pictures.append(el("img", {class: "thumb plate", src: e.crop_url, loading: "lazy", alt: e.plate || ""}));
  if (!pictures.childNodes.length) pictures.append("—");
  const lasted = e.end_at ? (Date.parse(e.end_at) - Date.parse(e.start_at)) / 1000 : null;
  return el("tr", {"data-event": e.id, "data-testid": "event"}, pictures,
    el("td", {}, el("time", {datetime: e.start_at}, when(e.start_at)),
      lasted !== null && lasted >= 1 ? el("div", {class: "hint"}, fmtDuration(lasted)) : ""),
    el("td", {}, e.camera_name || `#${e.camera_id}`), el("td", {}, describe(e)),
    el("td", {}, (e.zones || []).join(", ") || "—"),
    el("td", {}, el("a", {class: "button", href: `/cameras/${e.camera_id}?at=${encodeURIComponent(at)}`,
      "data-act": "archive"}, t("ev.open_archive"))));
}

function params() {
  const f = form.elements;
  const p = new URLSearchParams();
  if (f.camera.value) p.append("camera", f.camera.value);
  if (f.start.value) p.append("start", isoOf(f.start.value));
  if (f.end.value) p.append("end", isoOf(f.end.value));
  for (const name of ["kind", "label"]) if (f[name].value) p.append(name, f[name].value);
  if (f.plate.value.trim()) p.append("plate", f.plate.value.trim());
  if (f.fuzzy.checked) p.append("fuzzy", "true");
  return p;
}

async function search(append = false) {
  if (!append) { offset = 0; query = params().toString(); }
  try {
    const data = await api(`/api/v1/events?${query}${query ? "&" : ""}limit=${PAGE}&offset=${offset}`);
    const rows = data.items.map(row);
    if (append) body.append(...rows); else body.replaceChildren(...rows);
    offset += data.items.length;
    summary.textContent = `${t("ev.found")}: ${data.total}`;
    more.hidden = offset >= data.total;
    errorLine.textContent = "";
    history.replaceState(null, "", `${location.pathname}?${formState()}`);
  } catch (err) { showError(errorLine, err); }
  window.KUZET.eventsLoaded = (window.KUZET.eventsLoaded || 0) + 1;
}

function formState() {
  const f = form.elements;
  const p = new URLSearchParams();
  for (const name of ["camera", "start", "end", "kind", "label", "plate"]) if (f[name].value) p.set(name, f[name].value);
  if (f.fuzzy.checked) p.set("fuzzy", "1");
  return p.toString();
}

async function init() {
  try {
    const cams = await allPages("/api/v1/cameras");
    form.elements.camera.append(...cams.filter((c) => c.rights.includes("view_archive"))
      .map((c) => el("option", {value: c.id}, c.name)));
  } catch (err) { showError(errorLine, err); }
  const given = new URLSearchParams(location.search);
  const f = form.elements;
  const now = new Date();
  f.start.value = localInput(new Date(now.getTime() - 24 * 3600 * 1000));
  for (const name of ["camera", "start", "end", "kind", "label", "plate"]) if (given.has(name)) f[name].value = given.get(name);
  f.fuzzy.checked = given.get("fuzzy") === "1";
  search();
}

form.addEventListener("submit", (event) => { event.preventDefault(); search(); });
more.addEventListener("click", () => search(true));
init();
