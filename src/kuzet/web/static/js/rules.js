// Alarm rules: list, create, edit, enable/disable, delete; a schedule editor of weekday + from/to windows (a window
// that ends before it starts runs past midnight, e.g. "yard at night 22:00–06:00").
import {allPages, api, el, t} from "./api.js";
import {prioBadge, showError} from "./ops.js";

const DAYS = [0, 1, 2, 3, 4, 5, 6];  // Monday = 0
const form = document.getElementById("rule-form");
const windows = document.getElementById("windows");
const errorLine = document.getElementById("rules-error");
const formError = document.getElementById("rule-error");
let cameras = [];
let places = [];
let rules = [];

// --- schedule editor ------------------------------------------------------------------------------------------------
function windowRow(w = {days: DAYS, from: "00:00", to: "24:00"}) {
  const index = windows.children.length + 1;
  const days = new Set(w.days ?? DAYS);
  const to = w.to === "24:00" ? "23:59" : w.to;
  const row = el("fieldset", {class: "window", "data-testid": "window"},
    el("legend", {}, `${t("rules.window")} ${index}`),
    el("div", {class: "days"}, ...DAYS.map((d) => el("label", {class: "check day"},
      el("input", {type: "checkbox", name: "day", value: d, ...(days.has(d) ? {checked: ""} : {})}), ` ${t(`ops.day.${d}`)}`))),
    el("label", {}, t("ops.from"), " ", el("input", {type: "time", name: "from", value: w.from ?? "00:00", required: ""})),
    el("label", {}, t("ops.to"), " ", el("input", {type: "time", name: "to", value: to ?? "23:59", required: ""})),
    el("button", {type: "button", class: "link", onclick: () => { row.remove(); renumber(); }}, t("rules.remove_window")));
  windows.append(row);
  return row;
}

function renumber() {
  [...windows.children].forEach((row, i) => { row.querySelector("legend").textContent = `${t("rules.window")} ${i + 1}`; });
}

function readSchedule() {
  return [...windows.querySelectorAll(".window")].map((row, i) => {
    const days = [...row.querySelectorAll("input[name=day]:checked")].map((x) => Number(x.value));
    if (!days.length) throw new Error(`${t("rules.window")} ${i + 1}: ${t("rules.need_days")}`);
    const from = row.querySelector("input[name=from]").value;
    let to = row.querySelector("input[name=to]").value;
    if (to === "23:59") to = "24:00";  // the end of the day
    return {days, from, to};
  });
}

function scheduleText(schedule) {
  if (!schedule || !schedule.length) return t("rules.always");
  return schedule.map((w) => {
    const days = w.days ?? DAYS;
    const names = days.length === 7 ? t("rules.every_day") : days.map((d) => t(`ops.day.${d}`)).join(", ");
    return `${names} ${w.from ?? "00:00"}–${w.to ?? "24:00"}`;
  }).join("; ");
}

document.getElementById("add-window").addEventListener("click", () => windowRow());
document.getElementById("add-night").addEventListener("click", () => windowRow({days: DAYS, from: "22:00", to: "06:00"}));

// --- the list -------------------------------------------------------------------------------------------------------
function scopeText(r) {
  if (r.camera_id) return `${t("ops.camera")}: ${(cameras.find((c) => c.id === r.camera_id) || {}).name || `#${r.camera_id}`}`;
  if (r.place_id) return `${t("rules.place")}: ${(places.find((p) => p.id === r.place_id) || {}).name || `#${r.place_id}`}`;
  return t("rules.scope.all");
}

function whatText(r) {
  const parts = [t(`ev.kind.${r.event_kind}`)];
  if (r.labels && r.labels.length) parts.push(r.labels.map((l) => t(`ev.label.${l}`)).join(", "));
  if (r.zone) parts.push(`${t("ev.zone")}: ${r.zone}`);
  if (r.min_duration) parts.push(`≥ ${r.min_duration} ${t("ops.unit.s")}`);
  return parts.join(" · ");
}

function ruleRow(r) {
  const status = el("span", {class: "error", role: "alert"});
  const toggle = el("input", {type: "checkbox", "aria-label": `${t("rules.enabled")}: ${r.name}`, ...(r.enabled ? {checked: ""} : {})});
  toggle.addEventListener("change", async () => {
    try { Object.assign(r, await api(`/api/v1/alarm-rules/${r.id}`, {method: "PATCH", body: {enabled: toggle.checked}})); }
    catch (err) { toggle.checked = !toggle.checked; showError(status, err); }
  });
  const remove = el("button", {type: "button", class: "danger", "data-act": "delete"}, t("rules.delete"));
  let armed = null;
  remove.addEventListener("click", async () => {
    if (!armed) {  // a second click within 5 s deletes: no browser dialog in the way
      remove.textContent = t("rules.confirm_delete");
      armed = setTimeout(() => { armed = null; remove.textContent = t("rules.delete"); }, 5000);
      return;
    }
    clearTimeout(armed);
    try { await api(`/api/v1/alarm-rules/${r.id}`, {method: "DELETE"}); load(); } catch (err) { showError(status, err); }
  });
  return el("tr", {"data-rule": r.id, class: r.enabled ? "" : "muted"},
    el("td", {}, r.name), el("td", {}, scopeText(r)), el("td", {}, whatText(r)),
    el("td", {"data-testid": "schedule"}, scheduleText(r.schedule)), el("td", {}, prioBadge(r.priority)),
    el("td", {}, toggle),
    el("td", {}, el("button", {type: "button", "data-act": "edit", onclick: () => edit(r)}, t("rules.edit")), " ", remove, status));
}

async function load() {
  try {
    rules = await allPages("/api/v1/alarm-rules");
    document.querySelector("#rules tbody").replaceChildren(...rules.map(ruleRow));
    document.getElementById("rules-empty").hidden = rules.length > 0;
    errorLine.textContent = "";
  } catch (err) { showError(errorLine, err); }
  window.KUZET.rules = rules.length;
}

// --- the form -------------------------------------------------------------------------------------------------------
function reset() {
  form.reset();
  form.elements.id.value = "";
  windows.replaceChildren();
  document.getElementById("rule-form-title").textContent = t("rules.new");
  document.getElementById("rule-save").textContent = t("rules.create");
  document.getElementById("rule-cancel").hidden = true;
  formError.textContent = "";
}

function edit(r) {
  reset();
  const f = form.elements;
  f.id.value = r.id;
  f.name.value = r.name;
  f.priority.value = r.priority;
  f.scope.value = r.camera_id ? "camera" : r.place_id ? "place" : "all";
  if (r.camera_id) f.camera_id.value = r.camera_id;
  if (r.place_id) f.place_id.value = r.place_id;
  f.event_kind.value = r.event_kind;
  form.querySelectorAll("input[name=labels]").forEach((x) => { x.checked = (r.labels || []).includes(x.value); });
  f.zone.value = r.zone || "";
  f.min_duration.value = r.min_duration || 0;
  f.enabled.checked = r.enabled;
  for (const w of r.schedule || []) windowRow(w);
  document.getElementById("rule-form-title").textContent = `${t("rules.editing")}: ${r.name}`;
  document.getElementById("rule-save").textContent = t("rules.save");
  document.getElementById("rule-cancel").hidden = false;
  form.scrollIntoView({behavior: "smooth"});
}
document.getElementById("rule-cancel").addEventListener("click", reset);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  formError.textContent = "";
  const f = form.elements;
  try {
    const scope = f.scope.value;
    const labels = [...form.querySelectorAll("input[name=labels]:checked")].map((x) => x.value);
    const body = {
      name: f.name.value.trim(), priority: f.priority.value, event_kind: f.event_kind.value,
      camera_id: scope === "camera" ? Number(f.camera_id.value) : null,
      place_id: scope === "place" ? Number(f.place_id.value) : null,
      labels: labels.length ? labels : null, zone: f.zone.value.trim() || null,
      min_duration: Number(f.min_duration.value || 0), schedule: readSchedule(), enabled: f.enabled.checked,
    };
    if (f.id.value) await api(`/api/v1/alarm-rules/${f.id.value}`, {method: "PATCH", body});
    else await api("/api/v1/alarm-rules", {method: "POST", body});
    reset();
    load();
  } catch (err) { showError(formError, err); }
});

async function init() {
  try {
    [cameras, places] = await Promise.all([allPages("/api/v1/cameras"), allPages("/api/v1/places")]);
  } catch (err) { showError(errorLine, err); }
  form.elements.camera_id.replaceChildren(...cameras.map((c) => el("option", {value: c.id}, c.name)));
  form.elements.place_id.replaceChildren(...places.map((p) => el("option", {value: p.id}, p.name)));
  // choosing a camera or a place also chooses the matching scope
  form.elements.camera_id.addEventListener("change", () => { form.elements.scope.value = "camera"; });
  form.elements.place_id.addEventListener("change", () => { form.elements.scope.value = "place"; });
  load();
}
init();
