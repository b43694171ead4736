// The audit log for auditors: newest first, filtered by action, actor, camera and time, a page at a time (offset
// paging of GET /api/v1/audit); beside it, whether the hash chain verifies (GET /api/v1/audit/verify).
import {api, el, fmtNumber, label, t, tn} from "./api.js";
import {isoOf, showError, when} from "./ops.js";

const PAGE = 50;
const form = document.getElementById("audit-form");
const body = document.querySelector("#audit tbody");
const summary = document.getElementById("audit-summary");
const errorLine = document.getElementById("audit-error");
const prev = document.getElementById("audit-prev");
const next = document.getElementById("audit-next");
const chain = document.getElementById("audit-chain");
let offset = 0;

/** An object's id as people read it: "#3"; a value the catalogue names (a camera kind a retention requirement is
 *  for) by its name; anything else (an export's hex id, a period) as code. */
function objectId(id) {
  if (/^\d+$/.test(id)) return `#${id}`;
  for (const group of ["camera_kind", "place_kind", "role"]) {
    if (`label.${group}.${id}` in window.KUZET.texts) return label(group, id);
  }
  return el("code", {}, id);
}

/** What a record is about, in words: "Camera #3", "User #12", "Retention requirement: Entrance". */
function object(r) {
  const parts = [];
  if (r.object_type) {
    parts.push(label("audit_object", r.object_type));
    if (r.object_id) parts.push(" ", objectId(r.object_id));
  }
  if (r.camera_id && r.object_type !== "camera") parts.push(parts.length ? " · " : "", `${label("audit_object", "camera")} #${r.camera_id}`);
  return parts.length ? parts : ["—"];
}

function row(r) {
  return el("tr", {"data-seq": r.seq},
    el("td", {}, fmtNumber(r.seq)), el("td", {}, el("time", {datetime: r.at}, when(r.at))),
    el("td", {}, r.actor_name || t("audit.system")),
    el("td", {"data-action": r.action}, label("audit_action", r.action)),
    el("td", {}, ...object(r)), el("td", {}, [r.legal_basis, r.purpose].filter(Boolean).join(" · ") || "—"));
}

function params() {
  const f = form.elements;
  const p = new URLSearchParams();
  if (f.action.value) p.set("action", f.action.value);
  if (f.actor.value.trim()) p.set("actor", f.actor.value.trim());
  if (f.camera.value) p.set("camera", f.camera.value);
  if (f.since.value) p.set("since", isoOf(f.since.value));
  if (f.until.value) p.set("until", isoOf(f.until.value));
  return p;
}

async function load() {
  const p = params();
  p.set("limit", PAGE);
  p.set("offset", offset);
  try {
    const data = await api(`/api/v1/audit?${p}`);
    body.replaceChildren(...data.items.map(row));
    summary.textContent = data.total
      ? t("audit.shown", {from: fmtNumber(offset + 1), to: fmtNumber(offset + data.items.length),
        total: tn("audit.records", data.total)})
      : t("audit.none");
    prev.disabled = offset === 0;
    next.disabled = offset + data.items.length >= data.total;
    errorLine.textContent = "";
  } catch (err) { showError(errorLine, err); }
  window.KUZET.auditLoaded = (window.KUZET.auditLoaded || 0) + 1;
}

async function verify() {
  try {
    const result = await api("/api/v1/audit/verify");
    chain.textContent = result.ok ? t("audit.chain_ok", {records: tn("audit.records", result.checked)})
      : t("audit.chain_broken", {seq: fmtNumber(result.broken_seq ?? 0)});
    chain.className = `badge ${result.ok ? "ok" : "error"}`;
    if (!result.ok && result.problem) chain.title = result.problem;
  } catch (err) { showError(chain, err); }
}

function actions() {
  const prefix = "label.audit_action.";
  const names = Object.keys(window.KUZET.texts).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  names.sort((a, b) => label("audit_action", a).localeCompare(label("audit_action", b)));
  form.elements.action.append(...names.map((a) => el("option", {value: a}, label("audit_action", a))));
}

form.addEventListener("submit", (event) => { event.preventDefault(); offset = 0; load(); });
prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
next.addEventListener("click", () => { offset += PAGE; load(); });
actions();
load();
verify();
