// Safe-yard pages in the user's words: the list and the programme's dashboard; a passport with labelled fields, the
// full address, counts by the language's plural rules, masked lists opened only with a purpose, history as sentences.
import {api, el, label, t} from "./api.js";
import {count, day, moment, number as fmtNumber} from "./words.js";

const CATS = ["resident", "supervised", "firearm", "rental", "volunteer"];
const COUNTED = {rental: "sy.n_flats"};  // what each list counts; people otherwise
const DATE_FIELDS = new Set(["birth_date", "supervision_from", "supervision_to", "permit_expires", "period_from",
  "period_to", "check_on", "joined_on"]);

const shown = (key, value) => (value === null || value === undefined || value === "" ? "—"
  : DATE_FIELDS.has(key) && /^\d{4}-\d{2}-\d{2}/.test(String(value)) ? day(value) : String(value));
const countLine = (counts) => CATS.filter((c) => c in counts)
  .map((c) => t("sy.count_line", {category: t(`sy.${c}`), count: count(COUNTED[c] || "sy.n_people", counts[c])})).join(" · ");
const recording = (cams) => count("sy.cameras_recording", cams.filter((c) => c.state === "recording").length,
  {total: fmtNumber(cams.length)});

function fields(node, pairs) {
  node.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

async function listPage() {
  const data = await api("/api/v1/safe-yards");
  const head = [...document.querySelectorAll("#yards thead th")].map((th) => th.textContent);
  document.querySelector("#yards tbody").replaceChildren(...data.items.map((y) => el("tr", {},
    el("td", {"data-label": head[0]}, el("a", {href: `/safe-yards/${y.id}`}, y.yard)),
    el("td", {"data-label": head[1]}, y.full_address || t("sy.no_address")),
    el("td", {"data-label": head[2]}, day(y.joined_on)),
    el("td", {"data-label": head[3]}, countLine(y.counts)),
    el("td", {"data-label": head[4]}, y.cameras.length ? recording(y.cameras) : t("sy.no_cameras")))));
  let d;
  try { d = await api("/api/v1/safe-yards/dashboard"); } catch (err) { return; }  // no dashboard for this role
  document.getElementById("dashboard-box").hidden = false;
  const years = Object.entries(d.per_district_year).flatMap(([district, byYear]) =>
    Object.entries(byYear).map(([year, n]) => [district, year, count("sy.n_yards", n)]));
  const table = (caption, cols, rows) => el("table", {class: "list cards"}, el("caption", {}, caption),
    el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", {}, c)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((v, i) => el("td", {"data-label": cols[i]}, v))))));
  const ba = (x) => (x ? `${fmtNumber(x.before)} / ${fmtNumber(x.after)}` : "—");
  document.getElementById("dashboard").replaceChildren(
    table(t("sy.per_year"), [t("sy.district"), t("sy.year"), t("sy.yard")], years),
    table(t("sy.before_after"), [t("sy.yard"), t("sy.offences"), t("sy.incidents")],
      d.items.map((i) => [i.yard, ba(i.offences), ba(i.incidents)])),
    el("h3", {}, t("sy.to_check")),
    el("ul", {}, ...d.to_check.map((c) => {
      const yard = d.items.find((i) => i.id === c.safe_yard_id);
      return el("li", {class: c.overdue ? "error" : ""}, t("sy.check_line", {date: day(c.date),
        category: t(`sy.${c.category}`), yard: yard ? yard.yard : `№${c.safe_yard_id}`}) + (c.overdue ? ` (${t("sy.overdue")})` : ""));
    })));
}

/** A history entry as a sentence: «1 марта 2024 г., 10:00 — Инспектор: Добавлена запись: Жители». */
function historyLine(h) {
  const action = label("yard_action", h.action);
  const d = h.details || {};
  let what = action;
  if (d.category) what = t("sy.history_fields", {action, fields: t(`sy.${d.category}`)});
  else if (Array.isArray(d.fields)) what = t("sy.history_fields", {action, fields: d.fields.map((f) => label("yard_attribute", f)).join(", ")});
  return t("sy.history_line", {when: moment(h.at), who: h.by || t("sy.system"), what});
}

/** The characteristics as «Label: value» lines to edit, and back (labels of this language, or keys, to keys). */
const fieldKeys = () => Object.fromEntries(Object.keys(window.KUZET.texts || {}).filter((k) => k.startsWith("label.yard_field."))
  .map((k) => [t(k).toLowerCase(), k.slice("label.yard_field.".length)]));
const toLines = (chars) => Object.entries(chars || {}).map(([k, v]) => `${label("yard_field", k)}: ${v ?? ""}`).join("\n");
function fromLines(text) {
  const keys = fieldKeys();
  return Object.fromEntries(text.split("\n").filter((l) => l.includes(":")).map((l) => {
    const name = l.slice(0, l.indexOf(":")).trim();
    return [keys[name.toLowerCase()] || name, l.slice(l.indexOf(":") + 1).trim()];
  }));
}

function personRows(list) {
  document.querySelector("#people tbody").replaceChildren(...list.map((x) => el("tr", {},
    el("td", {"data-label": t("sy.category")}, t(`sy.${x.category}`)),
    el("td", {class: "person", "data-label": t("label.person_field.name")}, x.name || x.tenant || "—"),
    el("td", {"data-label": t("sy.details")}, Object.entries(x).filter(([k, v]) => !["id", "category", "name"].includes(k) && v !== null && v !== "")
      .map(([k, v]) => `${label("person_field", k)}: ${shown(k, v)}`).join(" · ")))));
}

function personForm(form) {
  const all = JSON.parse(form.dataset.fields);
  const required = JSON.parse(form.dataset.required);
  const box = document.getElementById("person-fields");
  const legend = box.querySelector("legend");
  const draw = () => {
    const category = form.elements.category.value;
    box.replaceChildren(legend, ...all[category].map((f) => el("label", {}, label("person_field", f),
      el("input", {name: `f_${f}`, type: DATE_FIELDS.has(f) ? "date" : "text", maxlength: "500",
        ...(required[category].includes(f) ? {required: "required"} : {})}))));
  };
  form.elements.category.addEventListener("change", draw);
  draw();
  return () => Object.fromEntries(all[form.elements.category.value]
    .map((f) => [f, form.elements[`f_${f}`].value.trim()]).filter(([, v]) => v));
}

async function passportPage(root) {
  const id = root.dataset.yard;
  let p;
  try { p = await api(`/api/v1/safe-yards/${id}`); } catch (err) { document.getElementById("yard-title").textContent = t("common.not_found"); return; }
  document.getElementById("yard-title").textContent = p.yard;
  fields(document.getElementById("yard-meta"), [[t("sy.address"), p.full_address || t("sy.no_address")],
    ...(p.district ? [[t("sy.district"), p.district]] : []), [t("sy.joined"), day(p.joined_on)],
    ...(p.inspector ? [[t("sy.inspector"), p.inspector]] : [])]);
  fields(document.getElementById("yard-characteristics"), Object.entries(p.characteristics || {})
    .map(([k, v]) => [label("yard_field", k), v === null ? "—" : String(v)]));
  document.getElementById("yard-notes").textContent = p.notes ? `${t("sy.notes")}: ${p.notes}` : "";
  document.getElementById("yard-cameras").replaceChildren(...(p.cameras.length ? p.cameras.map((c) => el("li", {},
    el("a", {href: `/cameras/${c.id}`}, c.name), ` — ${label("camera_state", c.state)}`)) : [el("li", {}, t("sy.no_cameras"))]));
  document.getElementById("counts").textContent = countLine(p.counts);
  for (const lang of ["ru", "kk"]) document.getElementById(`print-${lang}`).href = `/api/v1/safe-yards/${id}/passport.pdf?lang=${lang}`;
  document.getElementById("history").replaceChildren(...p.history.map((h) => el("li", {}, historyLine(h))));
  if (!p.people) return;
  personRows(p.people);
  const form = document.getElementById("open-form");
  form.hidden = false;
  document.getElementById("import-box").hidden = false;
  document.getElementById("edit-box").hidden = false;
  const edit = document.getElementById("edit-form");
  edit.characteristics.value = toLines(p.characteristics);
  edit.notes.value = p.notes || "";
  edit.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api(`/api/v1/safe-yards/${id}`, {method: "PATCH", body: {characteristics: fromLines(edit.characteristics.value), notes: edit.notes.value}});
      document.getElementById("edit-result").textContent = t("sy.saved");
    } catch (err) { document.getElementById("edit-result").textContent = err.message; }
  });
  const personForm_ = document.getElementById("person-form");
  const values = personForm(personForm_);
  personForm_.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api(`/api/v1/safe-yards/${id}/people`, {method: "POST", body: {category: personForm_.elements.category.value, fields: values()}});
      document.getElementById("person-result").textContent = t("sy.saved");
    } catch (err) { document.getElementById("person-result").textContent = err.message; }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const purpose = form.purpose.value;
    personRows(await api(`/api/v1/safe-yards/${id}/people?purpose=${encodeURIComponent(purpose)}`));
    const box = document.getElementById("print-personal");
    box.hidden = false;
    box.querySelectorAll("a").forEach((a) => { a.href = `/api/v1/safe-yards/${id}/passport.pdf?lang=${a.dataset.lang}&personal=true&purpose=${encodeURIComponent(purpose)}`; a.target = "_blank"; });
  });
  const file = document.querySelector("#import-form input[type=file]");
  file.addEventListener("change", () => {
    document.getElementById("import-file").textContent = file.files.length ? file.files[0].name : t("sy.no_file");
  });
  document.getElementById("import-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await fetch(`/api/v1/safe-yards/${id}/import`, {method: "POST", body: new FormData(e.target), headers: {"X-Requested-With": "kuzet"}});
    const data = await r.json();
    document.getElementById("import-result").textContent = r.ok ? count("sy.imported", data.imported) : data.error.message;
  });
}

const root = document.getElementById("passport");
if (root) passportPage(root); else listPage();
