// The telecom's console: subscribers and their states, contracts with printable notices, invoice runs and payment
// imports, retention compliance, usage per organisation. Every value shown as text (el()).
import {api, el, fmtNumber, fmtTime, label, t, tn} from "./api.js";

const money = (tiyn) => fmtNumber(tiyn / 100, {style: "currency", currency: "KZT"});
const day = (value) => fmtTime(value, {dateStyle: "medium"});
const tabs = document.querySelectorAll("[data-tab]");
const loaded = new Set();

for (const tab of tabs) {
  tab.addEventListener("click", () => show(tab.dataset.tab));
}

function show(name) {
  for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
  if (!loaded.has(name)) { loaded.add(name); LOADERS[name](); }
}

// --- subscribers ----------------------------------------------------------------------------------------------------
const NEXT = {trial: ["active", "suspended", "ended"], active: ["suspended", "ended"], suspended: ["active", "ended"],
  ended: ["trial", "active"]};
const flatMessage = document.getElementById("flat-message");

async function loadFlats() {
  const state = document.getElementById("flat-state").value;
  const q = document.getElementById("flat-q").value.trim();
  const page = await api(`/api/v1/cloud/flats?limit=200${state ? `&state=${state}` : ""}${q ? `&q=${encodeURIComponent(q)}` : ""}`);
  document.getElementById("flat-total").textContent = tn("cloud.total", page.total);
  document.getElementById("flats").replaceChildren(...page.items.map((f) => {
    const change = el("select", {"aria-label": t("cloud.change_state")}, el("option", {value: ""}, t("cloud.change_state")),
      ...NEXT[f.state].map((s) => el("option", {value: s}, label("cloud_state", s))));
    change.addEventListener("change", async () => {
      if (!change.value) return;
      try {
        await api(`/api/v1/cloud/flats/${f.id}/state`, {method: "POST", body: {state: change.value, reason: "operator"}});
        flatMessage.textContent = t("cloud.state_changed", {account: f.account, state: label("cloud_state", change.value)});
      } catch (err) { flatMessage.textContent = err.message; }
      loadFlats();
    });
    const code = el("button", {type: "button", onclick: async () => {
      const made = await api(`/api/v1/cloud/flats/${f.id}/code`, {method: "POST"});
      flatMessage.replaceChildren(t("cloud.code_made", {account: f.account, date: day(made.expires_at)}), " ",
        el("strong", {"data-testid": "code"}, made.code));
      loadFlats();
    }}, t("cloud.new_code"));
    return el("tr", {"data-state": f.state}, el("td", {}, f.account), el("td", {}, f.number), el("td", {}, f.plan),
      el("td", {}, el("span", {class: `state state-${f.state}`}, label("cloud_state", f.state)),
        f.state_reason ? el("div", {class: "hint"}, label("cloud_reason", f.state_reason)) : ""),
      el("td", {}, f.residents.map((r) => r.username).join(", ") || "—", el("div", {class: "hint"}, `${f.residents.length}/${f.resident_slots}`)),
      el("td", {class: "money"}, money(f.balance_tiyn)), el("td", {}, change, " ", code));
  }));
}
document.getElementById("flat-state").addEventListener("change", loadFlats);
document.getElementById("flat-q").addEventListener("input", () => { clearTimeout(loadFlats.timer); loadFlats.timer = setTimeout(loadFlats, 300); });

// --- contracts and notices ------------------------------------------------------------------------------------------
async function loadContracts() {
  const contracts = await api("/api/v1/cloud/contracts");
  document.getElementById("contracts").replaceChildren(...contracts.map((c) => el("tr", {},
    el("td", {}, c.number), el("td", {}, `${c.building}${c.address ? ", " + c.address : ""}`), el("td", {}, c.plan),
    el("td", {}, day(c.starts_on)), el("td", {}, String(c.flats)),
    el("td", {}, ...c.entrance_ids.map((id, i) => el("button", {type: "button", onclick: () => notices(id)}, c.entrances[i]))))));
}

async function notices(entranceId) {
  const response = await api(`/api/v1/cloud/entrances/${entranceId}/notices.pdf`, {method: "POST", raw: true});
  if (!response.ok) return;
  const url = URL.createObjectURL(await response.blob());
  window.open(url, "_blank");
}

// --- billing --------------------------------------------------------------------------------------------------------
const thisMonth = new Date();
const lastMonth = new Date(thisMonth.getFullYear(), thisMonth.getMonth() - 1, 1);
const monthText = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
const period = document.getElementById("run-period");

async function loadBilling() {
  if (!period.value) period.value = monthText(lastMonth);
  const p = period.value;
  document.getElementById("export-csv").href = `/api/v1/cloud/invoices/export?period=${p}&format=csv`;
  document.getElementById("export-xlsx").href = `/api/v1/cloud/invoices/export?period=${p}&format=xlsx`;
  const page = await api(`/api/v1/cloud/invoices?period=${p}&limit=200`);
  document.getElementById("invoices").replaceChildren(...page.items.map((i) => el("tr", {},
    el("td", {}, i.account), el("td", {}, i.plan), el("td", {}, `${i.days_active}/${i.days_in_period}`),
    el("td", {class: "money"}, money(i.amount_tiyn)))),
  el("tr", {}, el("td", {}, tn("cloud.total", page.total)), el("td", {}), el("td", {}), el("td", {class: "money"}, money(page.amount_tiyn))));
}
period.addEventListener("change", loadBilling);
document.getElementById("run-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {period: form.get("period"), replace: form.get("replace") === "on"};
  if (form.get("due_on")) body.due_on = form.get("due_on");
  const message = document.getElementById("run-message");
  try {
    const run = await api("/api/v1/cloud/invoices/run", {method: "POST", body});
    message.textContent = t("cloud.run_done", {n: run.invoices, amount: money(run.amount_tiyn), due: day(run.due_on)});
  } catch (err) { message.textContent = err.message; }
  loadBilling();
});
document.getElementById("payments-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/api/v1/cloud/payments/import", {method: "POST", body: new FormData(event.target),
    headers: {"X-Requested-With": "kuzet"}, credentials: "same-origin"});
  const body = await response.json();
  const message = document.getElementById("payments-message");
  const list = document.getElementById("payments-errors");
  if (response.ok) {
    message.textContent = t("cloud.payments_done", {n: body.rows, amount: money(body.amount_tiyn), resumed: body.reactivated});
    list.replaceChildren();
  } else {
    message.textContent = t("cloud.payments_rejected");
    list.replaceChildren(...(body.error.errors || [{line: 1, message: body.error.message}]).map((e) =>
      el("li", {}, t("cloud.line", {n: e.line}), " ", e.message)));
  }
});

// --- compliance -----------------------------------------------------------------------------------------------------
async function loadCompliance() {
  const report = await api("/api/v1/cloud/compliance");
  document.getElementById("compliance-summary").textContent = t("cloud.short_summary", {n: report.short.length, of: report.cameras.length});
  const rows = [...report.cameras].sort((a, b) => Number(b.short) - Number(a.short) || a.name.localeCompare(b.name));
  document.getElementById("compliance").replaceChildren(...rows.map((c) => el("tr", {class: c.short ? "row-short" : "", "data-short": String(c.short)},
    el("td", {}, c.name, el("div", {class: "hint"}, label("cloud_kind", c.kind))), el("td", {}, c.organisation || "—"),
    el("td", {}, c.required_days == null ? "—" : tn("portal.days", c.required_days)),
    el("td", {}, tn("portal.days", Math.round(c.held_days * 10) / 10)),
    el("td", {}, `${fmtNumber(c.uptime_percent, {maximumFractionDigits: 1})} %`),
    el("td", {}, Object.entries(c.gap_seconds).map(([r, s]) => `${label("cloud_gap", r)}: ${fmtNumber(s / 3600, {maximumFractionDigits: 1})} ${t("cloud.hours")}`).join("; ")),
    el("td", {}, c.offline_since ? fmtTime(c.offline_since) : ""))));
  const reqs = await api("/api/v1/cloud/requirements");
  document.getElementById("requirements").replaceChildren(...reqs.map((r) => el("li", {},
    `${label("cloud_kind", r.camera_kind)}: ${tn("portal.days", r.days)}`, el("div", {class: "meta"}, r.basis))));
}

// --- usage ----------------------------------------------------------------------------------------------------------
const usagePeriod = document.getElementById("usage-period");
async function loadUsage() {
  if (!usagePeriod.value) usagePeriod.value = monthText(thisMonth);
  const rows = await api(`/api/v1/cloud/usage?period=${usagePeriod.value}`);
  document.getElementById("usage").replaceChildren(...rows.map((r) => el("tr", {},
    el("td", {}, r.organisation || "—"), el("td", {}, String(r.cameras)),
    el("td", {}, `${fmtNumber(r.bytes_stored / 2 ** 30, {maximumFractionDigits: 2})} GiB`),
    el("td", {}, fmtNumber(r.archive_hours_viewed, {maximumFractionDigits: 1})), el("td", {}, fmtNumber(r.live_sessions)),
    el("td", {}, fmtNumber(r.live_hours_viewed, {maximumFractionDigits: 1})))));
}
usagePeriod.addEventListener("change", loadUsage);

const LOADERS = {flats: loadFlats, contracts: loadContracts, billing: loadBilling, compliance: loadCompliance, usage: loadUsage};
show("flats");
