// Routing agreements: who routes which cameras or sites to which police unit, for what, until when, on what basis;
// the signed document; ending, renewing and registering them (for whoever runs the business).
import {allPages, api, el, fmtTime, label, t} from "./api.js";

const root = document.getElementById("agreements-page");
const manage = root.dataset.manage === "true";
const message = document.getElementById("agreement-message");
const day = (value) => (value ? fmtTime(value, {dateStyle: "medium"}) : "…");

async function upload(agreement) {
  const input = el("input", {type: "file", accept: "application/pdf"});
  input.addEventListener("change", async () => {
    const form = new FormData();
    form.append("file", input.files[0]);
    const response = await fetch(`/api/v1/cloud/agreements/${agreement.id}/document`, {method: "PUT", body: form,
      headers: {"X-Requested-With": "kuzet"}, credentials: "same-origin"});
    const body = await response.json();
    message.textContent = response.ok ? t("agreements.uploaded") : body.error.message;
    load();
  });
  input.click();
}

async function load() {
  const list = await api("/api/v1/cloud/agreements");
  document.getElementById("agreements").replaceChildren(...list.map((a) => {
    const actions = [];
    if (a.document) actions.push(el("a", {href: `/api/v1/cloud/agreements/${a.id}/document`, target: "_blank"}, t("agreements.document")));
    if (manage && a.state === "active") {
      actions.push(el("button", {type: "button", onclick: () => upload(a)}, t("agreements.upload")));
      actions.push(el("button", {type: "button", class: "danger", onclick: async () => {
        const reason = prompt(t("agreements.end_reason"));
        if (!reason) return;
        try { await api(`/api/v1/cloud/agreements/${a.id}/end`, {method: "POST", body: {reason}}); } catch (err) { message.textContent = err.message; }
        load();
      }}, t("agreements.end")));
    }
    if (manage && ["active", "expired"].includes(a.state) && a.ends_on && !a.renewed_by_id) {
      actions.push(el("button", {type: "button", onclick: async () => {
        const number = prompt(t("agreements.renew_number"));
        if (!number) return;
        const ends = prompt(t("agreements.renew_until"), "");
        try {
          await api(`/api/v1/cloud/agreements/${a.id}/renew`, {method: "POST", body: {number, ends_on: ends || null}});
        } catch (err) { message.textContent = err.message; }
        load();
      }}, t("agreements.renew")));
    }
    return el("tr", {"data-state": a.state}, el("td", {}, a.number, a.renews_id ? el("div", {class: "hint"}, t("agreements.renews")) : ""),
      el("td", {}, a.party), el("td", {}, a.holder), el("td", {}, a.scope.map((s) => label("cloud_right", s)).join(", ")),
      el("td", {}, `${day(a.starts_on)} — ${day(a.ends_on)}`),
      el("td", {}, a.targets.map((x) => x.name).join("; "), el("div", {class: "hint"}, a.legal_basis)),
      el("td", {}, el("span", {class: `state state-${a.state}`}, label("cloud_agreement", a.state)),
        a.end_reason ? el("div", {class: "hint"}, a.end_reason) : ""),
      el("td", {}, ...actions));
  }));
}

if (manage) {
  const orgs = await allPages("/api/v1/organisations");
  const police = orgs.filter((o) => ["police_duty_unit", "control_centre"].includes(o.kind));
  document.getElementById("party").replaceChildren(...orgs.filter((o) => !police.includes(o)).map((o) => el("option", {value: o.id}, o.name)));
  document.getElementById("holder").replaceChildren(...police.map((o) => el("option", {value: o.id}, o.name)));
  const places = await allPages("/api/v1/places");
  const sites = places.filter((p) => ["settlement", "district", "building", "entrance", "yard", "school", "public_place", "street", "road_point"].includes(p.kind));
  document.getElementById("sites").replaceChildren(...sites.map((p) => el("option", {value: p.id}, `${p.name} (${label("cloud_place", p.kind)})`)));
  document.getElementById("agreement-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = {number: form.get("number"), party_org_id: Number(form.get("party_org_id")),
      holder_org_id: Number(form.get("holder_org_id")), place_ids: form.getAll("place_ids").map(Number),
      scope: form.getAll("scope"), starts_on: form.get("starts_on"), ends_on: form.get("ends_on") || null,
      legal_basis: form.get("legal_basis")};
    if (form.get("archive_days_required")) body.archive_days_required = Number(form.get("archive_days_required"));
    try {
      const made = await api("/api/v1/cloud/agreements", {method: "POST", body});
      message.textContent = t("agreements.created", {number: made.number});
      event.target.reset();
    } catch (err) { message.textContent = err.message; }
    load();
  });
}
await load();
