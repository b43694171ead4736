// Administration without ids: places, cameras, users, grants and district assignments through the same API everyone
// else uses. Things are picked by name (the place tree, organisations, users, cameras), coordinates on a map (shown
// rounded), grants read as "who → what (rights) until when, basis"; each form says what happened right beside it, and
// revoking or deleting asks first.
import {allPages, api, el, fmtTime, label, t} from "./api.js";
import {showSigningKey} from "./signing.js";
import {fromZoned, zoneLabel} from "./zone.js";

const root = document.getElementById("admin");
const RIGHTS = ["view_live", "view_archive", "export", "ptz", "manage"];
const OPTIONS = {
  place_kind: ["region", "district", "settlement", "street", "building", "entrance", "yard", "school", "public_place",
    "road_point"],
  camera_kind: ["entrance", "yard", "street", "school", "road", "gate", "public_place", "shop", "other"],
  role: root.dataset.roles.split(","),
};
const ASSIGNABLE = new Set(["inspector", "police_operator"]);
const data = {places: [], organisations: [], users: [], cameras: [], grants: [], assignments: []};
const coordsDigits = 5;  // about a metre: what a map click can mean
window.KUZET.admin = {loaded: false};

// --- small helpers ----------------------------------------------------------------------------------------------------
const byId = (list, id) => list.find((x) => x.id === id);
const placeName = (id) => { const p = byId(data.places, id); return p ? p.name : t("adm.unknown_place"); };
const orgName = (id) => { const o = byId(data.organisations, id); return o ? o.name : t("adm.unknown_org"); };
const userName = (id) => {
  const u = byId(data.users, id);
  return u ? (u.full_name ? `${u.username} (${u.full_name})` : u.username) : t("adm.unknown_user");
};
const cameraName = (id) => { const c = byId(data.cameras, id); return c ? c.name : t("adm.unknown_camera"); };
const round = (x) => Number(x).toFixed(coordsDigits);
const coordsText = (lat, lon) => (lat === null || lat === undefined ? "—" : `${round(lat)}, ${round(lon)}`);
const dateText = (iso) => fmtTime(new Date(iso), {dateStyle: "long"});

/** What the API said: its message comes whole in the page's language; the code's words when it has none. */
function problem(err) {
  if (err.message) return err.message;
  const codes = {403: "forbidden", 404: "not_found", 409: "conflict", 413: "too_large", 422: "invalid"};
  return t(`error.${err.code || codes[err.status] || "invalid"}`);
}

function say(form, text, ok = true) {
  const node = form.querySelector("[data-message]");
  node.textContent = text;
  node.classList.toggle("error", !ok);
  node.classList.toggle("ok", ok);
  node.scrollIntoView?.({block: "nearest"});
}

/** Asks before revoking or deleting; resolves to true when confirmed. */
function confirmAction(title, text, action) {
  const box = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  box.querySelector("[data-ok]").textContent = action;
  return new Promise((resolve) => {
    const done = (value) => { box.close(); resolve(value); };
    box.querySelector("[data-ok]").onclick = (e) => { e.preventDefault(); done(true); };
    box.querySelector("[data-cancel]").onclick = () => done(false);
    box.oncancel = () => resolve(false);
    box.showModal();
  });
}

// --- pickers ----------------------------------------------------------------------------------------------------------
/** Places as a tree: each under its parent, indented, with its kind. */
function placeTree(filter = () => true) {
  const children = new Map();
  for (const p of data.places) {
    const parent = p.parent_id && byId(data.places, p.parent_id) ? p.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(p);
  }
  const out = [];
  const walk = (parent, depth) => {
    for (const p of (children.get(parent) || []).sort((a, b) => a.name.localeCompare(b.name))) {
      if (filter(p)) out.push({place: p, depth});
      walk(p.id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

const PICKERS = {
  place: () => placeTree().map(({place, depth}) => [place.id, `${"  ".repeat(depth)}${depth ? "└ " : ""}${place.name} · ${label("place_kind", place.kind)}`]),
  district: () => placeTree((p) => ["region", "settlement", "district"].includes(p.kind))
    .map(({place, depth}) => [place.id, `${"  ".repeat(depth)}${place.name} · ${label("place_kind", place.kind)}`]),
  organisation: () => data.organisations.map((o) => [o.id, `${o.name} · ${label("organisation_kind", o.kind)}`]),
  user: () => data.users.map((u) => [u.id, `${userName(u.id)} · ${label("role", u.role)}`]),
  staff: () => data.users.filter((u) => ASSIGNABLE.has(u.role)).map((u) => [u.id, `${userName(u.id)} · ${label("role", u.role)}`]),
  camera: () => data.cameras.map((c) => [c.id, `${c.name}${c.place_name ? ` · ${c.place_name}` : ""}`]),
};

function fillPickers() {
  for (const select of root.querySelectorAll("select[data-picker]")) {
    const keep = select.value;
    const empty = select.dataset.empty ? [el("option", {value: ""}, t(select.dataset.empty))] : [];
    select.replaceChildren(...empty, ...PICKERS[select.dataset.picker]().map(([value, text]) => el("option", {value}, text)));
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  }
}

for (const select of root.querySelectorAll("select[data-options]")) {
  select.replaceChildren(...OPTIONS[select.dataset.options].map((v) => el("option", {value: v}, label(select.dataset.options, v))));
}
const rightsBox = root.querySelector("[data-rights]");
rightsBox?.replaceChildren(...RIGHTS.map((r) => el("label", {class: "check"},
  el("input", {type: "checkbox", name: "rights", value: r, ...(r === "view_live" ? {checked: ""} : {})}), ` ${label("right", r)}`)));

// --- coordinates on a map ---------------------------------------------------------------------------------------------
let mapData = null;
async function coordinatePicker(fieldset) {
  const L = window.L;
  const box = fieldset.querySelector(".pick-map");
  const out = fieldset.querySelector("[data-coords-out]");
  const form = fieldset.closest("form");
  if (!L) { box.hidden = true; return; }
  mapData = mapData || await api("/api/v1/map").catch(() => ({features: [], tiles: null}));
  const map = L.map(box, {maxZoom: mapData.max_zoom || 19, minZoom: 3});
  if (mapData.tiles) L.tileLayer(mapData.tiles, {maxZoom: mapData.max_zoom || 19}).addTo(map);
  else box.classList.add("offline-map");
  const streets = L.geoJSON({type: "FeatureCollection", features: mapData.features.filter((f) => f.properties.layer === "street")},
    {style: {color: "#5d6d7e", weight: 4}}).addTo(map);
  const bounds = streets.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds.pad(0.3)); else map.setView([44.85, 65.48], 13);
  let marker = null;
  const set = (lat, lon) => {
    form.elements.lat.value = round(lat);
    form.elements.lon.value = round(lon);
    out.textContent = t("adm.coords_set", {coords: coordsText(lat, lon)});
    if (marker) marker.setLatLng([lat, lon]); else marker = L.marker([lat, lon], {keyboard: false}).addTo(map);
  };
  map.on("click", (e) => set(e.latlng.lat, e.latlng.lng));
  form.addEventListener("reset", () => {
    if (marker) { marker.remove(); marker = null; }
    out.textContent = t("adm.coords_none");
  });
  form.kuzetMap = {map, set};
  new ResizeObserver(() => map.invalidateSize()).observe(box);
}

// --- lists ------------------------------------------------------------------------------------------------------------
function table(name, columns, rows) {
  const node = root.querySelector(`table[data-list="${name}"]`);
  if (!node) return;
  node.replaceChildren(
    el("thead", {}, el("tr", {}, ...columns.map(([, head]) => el("th", {}, head)))),
    el("tbody", {}, ...rows.map((row) => el("tr", {"data-id": row.id},
      ...columns.map(([key, head]) => el("td", {"data-label": head}, row[key] ?? ""))))));
}

function renderPlaces() {
  table("places", [["name", t("adm.name")], ["kind", t("adm.kind")], ["parent", t("adm.parent")], ["coords", t("adm.coords")]],
    placeTree().map(({place}) => ({id: place.id, name: place.name, kind: label("place_kind", place.kind),
      parent: place.parent_id ? placeName(place.parent_id) : "—", coords: coordsText(place.lat, place.lon)})));
}

function renderCameras() {
  table("cameras", [["name", t("adm.name")], ["kind", t("adm.kind")], ["place", t("adm.place")],
    ["state", t("adm.enabled")], ["coords", t("adm.coords")], ["actions", ""]],
  data.cameras.map((c) => ({id: c.id, name: el("a", {href: `/cameras/${c.id}`}, c.name), kind: label("camera_kind", c.kind),
    place: c.place_name || placeName(c.place_id), state: t(c.enabled ? "adm.yes" : "adm.no"),
    coords: coordsText(c.lat, c.lon),
    actions: (c.rights || []).includes("manage") ? el("button", {type: "button", class: "danger", "data-act": "delete-camera",
      onclick: () => deleteCamera(c)}, t("adm.delete")) : ""})));
}

function renderUsers() {
  table("users", [["username", t("login.username")], ["full_name", t("adm.full_name")], ["role", t("admin.role")],
    ["org", t("admin.organisation")], ["active", t("adm.active")]],
  data.users.map((u) => ({id: u.id, username: u.username, full_name: u.full_name || "—", role: label("role", u.role),
    org: u.organisation_id ? orgName(u.organisation_id) : "—", active: t(u.is_active ? "adm.yes" : "adm.no")})));
}

/** "who → what (rights) until when, basis", in words. */
export function grantWords(g) {
  const who = g.user_id ? userName(g.user_id) : orgName(g.organisation_id);
  const what = g.camera_id ? t("adm.grant.camera", {name: cameraName(g.camera_id)})
    : t("adm.grant.place", {name: placeName(g.place_id)});
  const rights = RIGHTS.filter((r) => g.rights.includes(r)).map((r) => label("right", r)).join(", ");
  const until = g.revoked_at ? t("adm.grant.revoked", {when: dateText(g.revoked_at)})
    : g.valid_to ? t("adm.grant.until", {when: dateText(g.valid_to)}) : t("adm.grant.open_ended");
  return {who, what, rights, until, basis: g.legal_basis};
}

function renderGrants() {
  const list = root.querySelector('[data-list="grants"]');
  const showRevoked = document.getElementById("show-revoked").checked;
  list.replaceChildren(...data.grants.filter((g) => showRevoked || !g.revoked_at).map((g) => {
    const w = grantWords(g);
    return el("li", {class: g.revoked_at ? "revoked" : "", "data-grant": g.id, "data-testid": "grant"},
      el("p", {class: "grant-words"}, el("strong", {}, w.who), " → ", w.what, " ",
        el("span", {class: "rights"}, `(${w.rights})`), " ", el("span", {class: "until"}, w.until),
        el("br"), el("span", {class: "hint"}, `${t("adm.basis")}: `, w.basis)),
      g.revoked_at ? "" : el("button", {type: "button", class: "danger", "data-act": "revoke",
        onclick: () => revokeGrant(g)}, t("admin.revoke")));
  }));
  if (!list.children.length) list.replaceChildren(el("li", {class: "hint"}, t("adm.no_grants")));
}

function renderAssignments() {
  const list = root.querySelector('[data-list="assignments"]');
  if (!list) return;
  list.replaceChildren(...data.assignments.map((a) => el("li", {class: a.active ? "" : "revoked", "data-assignment": a.id},
    el("p", {class: "grant-words"}, el("strong", {}, a.user_id ? userName(a.user_id) : a.username), " → ", a.place || "—", " ",
      el("span", {class: "until"}, a.revoked_at ? t("adm.grant.revoked", {when: dateText(a.revoked_at)})
        : a.valid_to ? t("adm.grant.until", {when: dateText(a.valid_to)}) : t("adm.grant.open_ended")),
      el("br"), el("span", {class: "hint"}, `${t("adm.order")}: `, a.legal_basis)),
    a.active ? el("button", {type: "button", class: "danger", onclick: () => endAssignment(a)}, t("adm.end")) : "")));
  if (!list.children.length) list.replaceChildren(el("li", {class: "hint"}, t("adm.no_assignments")));
}

function renderAll() {
  fillPickers();
  renderPlaces();
  renderCameras();
  renderUsers();
  renderGrants();
  renderAssignments();
}

async function load() {
  const [places, organisations, users, cameras, grants, assignments] = await Promise.all([
    allPages("/api/v1/places"), allPages("/api/v1/organisations"), allPages("/api/v1/users"),
    allPages("/api/v1/cameras"), allPages("/api/v1/grants"),
    root.dataset.mayAssign === "true" ? allPages("/api/v1/safe-yards/assignments").catch(() => []) : []]);
  Object.assign(data, {places, organisations, users, cameras, grants, assignments});
  renderAll();
  window.KUZET.admin.loaded = true;
}

// --- actions ----------------------------------------------------------------------------------------------------------
async function revokeGrant(g) {
  const w = grantWords(g);
  const form = root.querySelector('[data-form="grant"]');
  if (!await confirmAction(t("adm.revoke_title"), t("adm.revoke_text", {who: w.who, what: w.what, rights: w.rights}),
    t("admin.revoke"))) return;
  try {
    await api(`/api/v1/grants/${g.id}`, {method: "DELETE"});
    say(form, t("adm.revoked", {who: w.who, what: w.what}));
    await load();
  } catch (err) { say(form, problem(err), false); }
}

async function deleteCamera(c) {
  const form = root.querySelector('[data-form="camera"]');
  if (!await confirmAction(t("adm.delete_camera_title"), t("adm.delete_camera_text", {name: c.name}), t("adm.delete"))) return;
  try {
    await api(`/api/v1/cameras/${c.id}`, {method: "DELETE"});
    say(form, t("adm.camera_deleted", {name: c.name}));
    await load();
  } catch (err) { say(form, problem(err), false); }
}

async function endAssignment(a) {
  const form = root.querySelector('[data-form="assignment"]');
  if (!await confirmAction(t("adm.end_title"), t("adm.end_text", {who: userName(a.user_id), where: a.place || ""}),
    t("adm.end"))) return;
  try {
    await api(`/api/v1/safe-yards/assignments/${a.id}`, {method: "DELETE"});
    say(form, t("adm.ended"));
    await load();
  } catch (err) { say(form, problem(err), false); }
}

const numberOrNull = (v) => (v === "" || v === null || v === undefined ? undefined : Number(v));
const endOfDay = (value) => {  // a date input's day, to its end, in the page's time zone
  if (!value) return undefined;
  const start = fromZoned(value);
  return new Date(start.getTime() + 86400000 - 1000).toISOString();
};

const SUBMIT = {
  place: (f) => ({path: "/api/v1/places", body: {kind: f.kind.value, name: f.name.value.trim(),
    parent_id: numberOrNull(f.parent_id.value), address: f.address.value.trim() || undefined,
    lat: numberOrNull(f.lat.value), lon: numberOrNull(f.lon.value)},
  done: (made) => t("adm.place_added", {name: made.name})}),
  camera: (f) => ({path: "/api/v1/cameras", body: {name: f.name.value.trim(), place_id: numberOrNull(f.place_id.value),
    kind: f.kind.value, main_url: f.main_url.value.trim(), sub_url: f.sub_url.value.trim() || undefined,
    lat: numberOrNull(f.lat.value), lon: numberOrNull(f.lon.value)},
  done: (made) => t("adm.camera_added", {name: made.name})}),
  user: (f) => ({path: "/api/v1/users", body: {username: f.username.value.trim(), full_name: f.full_name.value.trim(),
    password: f.password.value, role: f.role.value, organisation_id: numberOrNull(f.organisation_id.value),
    place_id: numberOrNull(f.place_id.value)},
  done: (made) => t("adm.user_added", {name: made.username})}),
  grant: (f, form) => {
    const holder = f.holder_kind.value, target = f.target_kind.value;
    const rights = [...form.querySelectorAll("input[name=rights]:checked")].map((x) => x.value);
    if (!rights.length) throw new Error(t("adm.choose_rights"));
    const body = {rights, legal_basis: f.legal_basis.value.trim(), valid_to: endOfDay(f.valid_to.value)};
    body[`${holder}_id`] = numberOrNull(f[`${holder}_id`].value);
    body[`${target}_id`] = numberOrNull(f[`${target}_id`].value);
    if (!body[`${holder}_id`]) throw new Error(t("adm.choose_holder"));
    if (!body[`${target}_id`]) throw new Error(t("adm.choose_target"));
    return {path: "/api/v1/grants", body, done: (made) => {
      const w = grantWords(made);
      return t("adm.grant_added", {who: w.who, what: w.what, rights: w.rights});
    }};
  },
  assignment: (f) => ({path: "/api/v1/safe-yards/assignments", body: {user_id: numberOrNull(f.user_id.value),
    place_id: numberOrNull(f.place_id.value), legal_basis: f.legal_basis.value.trim(), valid_to: endOfDay(f.valid_to.value)},
  done: (made) => t("adm.assigned", {who: userName(made.user_id), where: made.place || ""})}),
};

for (const form of root.querySelectorAll("form[data-form]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let request;
    try { request = SUBMIT[form.dataset.form](form.elements, form); } catch (err) { say(form, err.message, false); return; }
    try {
      const made = await api(request.path, {method: "POST", body: request.body});
      const text = request.done(made);
      form.reset();
      syncChoices();
      await load();
      say(form, text);
    } catch (err) { say(form, problem(err), false); }
  });
}

/** The grant form: a user or an organisation, a place or a camera. */
function syncChoices() {
  const f = root.querySelector('[data-form="grant"]');
  if (!f) return;
  for (const [radio, a, b] of [["holder_kind", "user_id", "organisation_id"], ["target_kind", "place_id", "camera_id"]]) {
    const chosen = f.elements[radio].value;
    f.elements[a].hidden = chosen !== a.replace("_id", "");
    f.elements[b].hidden = chosen !== b.replace("_id", "");
  }
}
root.querySelectorAll("input[name=holder_kind], input[name=target_kind]").forEach((r) => r.addEventListener("change", syncChoices));
syncChoices();
document.getElementById("show-revoked").addEventListener("change", renderGrants);
for (const input of root.querySelectorAll("input[type=date]")) input.title = zoneLabel();

await load();
for (const fieldset of root.querySelectorAll("[data-coords]")) coordinatePicker(fieldset);
showSigningKey(document.getElementById("signing-key"), {pem: true});
