// The crew's page (phones): open dispatches with the incident's type, place, address and a map link, and big buttons
// for the next sensible report. Crews are not on the alarm feed, so the page asks every few seconds.
import {api, el, t} from "./api.js";
import {clock, offenceName, prioBadge, showError, when} from "./ops.js";

const POLL_MS = 5000;
const STEPS = ["acknowledged", "en_route", "on_scene", "closed"];
// What a crew may sensibly report next: the next step, or skip one (arrived without pressing "en route"); a crew on
// the way may be called off (closed).
const NEXT = {sent: ["acknowledged", "en_route"], acknowledged: ["en_route", "on_scene"], en_route: ["on_scene", "closed"],
  on_scene: ["closed"], closed: []};
const STAMP = {acknowledged: "acknowledged_at", en_route: "en_route_at", on_scene: "on_scene_at", closed: "closed_at"};

const box = document.getElementById("dispatches");
const errorLine = document.getElementById("resp-error");
const updated = document.getElementById("resp-updated");
const cards = new Map();  // dispatch id → {key, node}
let busy = false;
window.KUZET.respond = {polls: 0};

async function card(d) {
  const inc = d.incident;
  const type = await offenceName(inc.offence_type);
  const place = inc.place;
  const hasCoords = inc.lat !== null && inc.lat !== undefined;
  const note = el("input", {name: "note", maxlength: "2000", "aria-label": t("resp.note")});
  const status = el("p", {class: "error", role: "alert"});
  const allowed = NEXT[d.status] || [];
  const buttons = STEPS.map((step) => {
    const done = Boolean(d[STAMP[step]]);
    return el("button", {type: "button", class: `step step-${step}${done ? " done" : ""}`, "data-step": step,
      ...(allowed.includes(step) ? {} : {disabled: ""}), onclick: () => report(d, step, note.value, status)},
    el("span", {}, t(`resp.do.${step}`)), done ? el("small", {}, when(d[STAMP[step]])) : "");
  });
  return el("article", {class: `dispatch card prio-${inc.priority}`, "data-dispatch": d.id, "data-status": d.status,
    "data-testid": "dispatch"},
    el("header", {}, prioBadge(inc.priority), " ", el("span", {class: "badge"}, t(`disp.${d.status}`))),
    el("h2", {}, type),
    el("p", {class: "big"}, inc.title),
    el("p", {}, el("strong", {}, place ? place.name : "—"), place && place.address ? el("br") : "",
      place && place.address ? place.address : ""),
    hasCoords ? el("p", {class: "map-links"},
      el("a", {class: "button big", href: `geo:${inc.lat},${inc.lon}?q=${inc.lat},${inc.lon}`}, t("resp.map")), " ",
      el("a", {href: `https://www.openstreetmap.org/?mlat=${inc.lat}&mlon=${inc.lon}#map=18/${inc.lat}/${inc.lon}`,
        rel: "noopener", target: "_blank"}, "OpenStreetMap"),
      el("span", {class: "hint"}, ` ${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)}`)) : "",
    el("p", {class: "hint"}, `${t("resp.sent")}: ${when(d.sent_at)}${d.sent_by ? ` · ${d.sent_by}` : ""}`),
    d.note ? el("p", {}, `${t("resp.operator_note")}: ${d.note}`) : "",
    el("div", {class: "steps"}, ...buttons),
    el("label", {class: "note"}, t("resp.note"), note),
    status,
    el("p", {}, el("a", {href: `/incidents/${inc.id}`}, t("resp.open_incident"))));
}

async function report(d, step, note, status) {
  busy = true;
  box.querySelectorAll(`[data-dispatch="${d.id}"] button`).forEach((b) => { b.disabled = true; });
  try {
    await api(`/api/v1/dispatches/${d.id}/status`, {method: "POST", body: {status: step, note}});
    if (step === "closed") updated.textContent = `${t("resp.closed_done")} №${d.incident.id}`;
  } catch (err) { showError(status, err); }
  busy = false;
  await refresh(true);
}

async function refresh(force = false) {
  if (busy && !force) return;
  try {
    const data = await api("/api/v1/dispatches/mine");
    const seen = new Set();
    const nodes = [];
    for (const d of data.items) {
      seen.add(d.id);
      const key = JSON.stringify(d);
      let entry = cards.get(d.id);
      if (!entry || entry.key !== key) {
        entry = {key, node: await card(d)};
        cards.set(d.id, entry);
      }
      nodes.push(entry.node);
    }
    for (const id of [...cards.keys()]) if (!seen.has(id)) cards.delete(id);
    box.replaceChildren(...nodes);
    document.getElementById("resp-empty").hidden = nodes.length > 0;
    errorLine.textContent = "";
    if (!updated.textContent.startsWith(t("resp.closed_done")) || force === false) {
      updated.textContent = `${t("resp.updated")}: ${clock()}`;
    }
  } catch (err) { showError(errorLine, err); }
  window.KUZET.respond.polls += 1;
}

refresh();
setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
