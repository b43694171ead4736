// Hot lists of wanted and stolen vehicles: lists (kind, alarm priority, on/off), entries (add, remove, search by plate
// prefix) and the all-or-nothing CSV import, whose rejection names every bad line.
import {api, el, t} from "./api.js";
import {prioBadge, showError, when} from "./ops.js";

const PAGE = 100;
const listsBody = document.querySelector("#lists tbody");
const entriesBox = document.getElementById("entries-box");
const entriesBody = document.querySelector("#entries tbody");
const more = document.getElementById("entries-more");
let selected = null;
let entryOffset = 0;

async function loadLists() {
  const errorLine = document.getElementById("lists-error");
  try {
    const data = await api("/api/v1/hotlists");
    listsBody.replaceChildren(...data.items.map(listRow));
    errorLine.textContent = "";
    if (selected) selected = data.items.find((l) => l.id === selected.id) || null;
    if (!selected) entriesBox.hidden = true;
  } catch (err) { showError(errorLine, err); }
}

function listRow(l) {
  const status = el("span", {class: "error", role: "alert"});
  const active = el("input", {type: "checkbox", "aria-label": `${t("hl.active")}: ${l.name}`, ...(l.active ? {checked: ""} : {})});
  active.addEventListener("change", async () => {
    try { await api(`/api/v1/hotlists/${l.id}`, {method: "PATCH", body: {active: active.checked}}); }
    catch (err) { active.checked = !active.checked; showError(status, err); }
  });
  const remove = el("button", {type: "button", class: "danger"}, t("rules.delete"));
  let armed = null;
  remove.addEventListener("click", async () => {
    if (!armed) {
      remove.textContent = t("rules.confirm_delete");
      armed = setTimeout(() => { armed = null; remove.textContent = t("rules.delete"); }, 5000);
      return;
    }
    clearTimeout(armed);
    try {
      await api(`/api/v1/hotlists/${l.id}`, {method: "DELETE"});
      if (selected && selected.id === l.id) selected = null;
      loadLists();
    } catch (err) { showError(status, err); }
  });
  return el("tr", {"data-list": l.id, class: selected && selected.id === l.id ? "selected" : ""},
    el("td", {}, el("button", {type: "button", class: "link", onclick: () => open(l)}, l.name)),
    el("td", {}, t(`hl.kind.${l.kind}`)), el("td", {}, prioBadge(l.priority)), el("td", {}, l.entries ?? 0),
    el("td", {}, active), el("td", {}, remove, status));
}

function open(l) {
  selected = l;
  entriesBox.hidden = false;
  document.getElementById("entries-title").textContent = `${t("hl.entries_of")}: ${l.name}`;
  document.getElementById("import-result").replaceChildren();
  document.getElementById("search-form").reset();
  listsBody.querySelectorAll("tr").forEach((tr) => tr.classList.toggle("selected", Number(tr.dataset.list) === l.id));
  loadEntries();
}

async function loadEntries(append = false) {
  if (!selected) return;
  if (!append) entryOffset = 0;
  const plate = document.getElementById("search-form").elements.plate.value.trim();
  const q = `${plate ? `plate=${encodeURIComponent(plate)}&` : ""}limit=${PAGE}&offset=${entryOffset}`;
  try {
    const data = await api(`/api/v1/hotlists/${selected.id}/entries?${q}`);
    const rows = data.items.map(entryRow);
    if (append) entriesBody.append(...rows); else entriesBody.replaceChildren(...rows);
    entryOffset += data.items.length;
    more.hidden = entryOffset >= data.total;
    document.getElementById("entries-count").textContent = `${t("ev.found")}: ${data.total}`;
  } catch (err) { showError(document.getElementById("entries-count"), err); }
}

function entryRow(e) {
  const status = el("span", {class: "error", role: "alert"});
  return el("tr", {"data-entry": e.id},
    el("td", {}, el("strong", {}, e.plate), e.plate_text && e.plate_text !== e.plate ? el("div", {class: "hint"}, e.plate_text) : ""),
    el("td", {}, e.reason || ""), el("td", {}, e.valid_to ? when(e.valid_to) : "—"),
    el("td", {}, el("button", {type: "button", "aria-label": `${t("hl.remove")} ${e.plate}`, onclick: async () => {
      try { await api(`/api/v1/hotlists/${selected.id}/entries/${e.id}`, {method: "DELETE"}); loadEntries(); loadLists(); }
      catch (err) { showError(status, err); }
    }}, t("hl.remove")), status));
}

document.getElementById("list-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = event.target;
  const error = f.querySelector("[role=alert]");
  error.textContent = "";
  try {
    const made = await api("/api/v1/hotlists", {method: "POST", body: {name: f.name.value.trim(), kind: f.kind.value,
      priority: f.priority.value}});
    f.reset();
    await loadLists();
    open(made);
  } catch (err) { showError(error, err); }
});

document.getElementById("search-form").addEventListener("submit", (event) => { event.preventDefault(); loadEntries(); });
more.addEventListener("click", () => loadEntries(true));

document.getElementById("entry-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = event.target;
  const error = f.querySelector("[role=alert]");
  error.textContent = "";
  try {
    await api(`/api/v1/hotlists/${selected.id}/entries`, {method: "POST", body: {plate: f.plate.value.trim(),
      reason: f.reason.value.trim(), valid_to: f.valid_to.value ? `${f.valid_to.value}T23:59:59Z` : null}});
    f.reset();
    loadEntries();
    loadLists();
  } catch (err) { showError(error, err); }
});

document.getElementById("import-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = event.target;
  const out = document.getElementById("import-result");
  const body = new FormData();
  body.append("file", f.file.files[0]);
  body.append("replace", f.replace.checked ? "true" : "false");
  out.replaceChildren(el("p", {class: "hint"}, t("common.loading")));
  const response = await fetch(`/api/v1/hotlists/${selected.id}/import`, {method: "POST", body,
    headers: {"X-Requested-With": "kuzet"}, credentials: "same-origin"});
  const data = await response.json().catch(() => ({}));
  if (response.ok) {
    out.replaceChildren(el("p", {class: "ok"}, `${t("hl.imported")}: +${data.added}, ${t("hl.updated")}: ${data.updated}`));
    f.reset();
    loadEntries();
    loadLists();
    return;
  }
  const error = data.error || {};
  let lines = error.errors;
  if (!lines && error.message && error.message.includes(": line ")) {  // older servers: the lines inside the message
    lines = error.message.slice(error.message.indexOf(": ") + 2).split("; ").map((s) => {
      const m = /^line (\d+): (.*)$/.exec(s);
      return m ? {line: Number(m[1]), message: m[2]} : {line: null, message: s};
    });
  }
  out.replaceChildren(el("p", {class: "error"}, lines ? t("hl.rejected") : `${t("common.error")}: ${error.message || response.statusText}`),
    ...(lines ? [el("ul", {class: "import-errors", "data-testid": "import-errors"}, ...lines.map((x) =>
      el("li", {"data-line": x.line ?? ""}, x.line !== null ? `${t("hl.line")} ${x.line}: ${x.message}` : x.message)))] : []));
});

loadLists();
