// Safe-yard pages: the list and dashboard, a passport with masked lists opened only with a purpose.
import {api, el, t} from "./api.js";

const CATS = ["resident", "supervised", "firearm", "rental", "volunteer"];

async function listPage() {
  const data = await api("/api/v1/safe-yards");
  document.querySelector("#yards tbody").replaceChildren(...data.items.map((y) => el("tr", {},
    el("td", {}, el("a", {href: `/safe-yards/${y.id}`}, y.yard)), el("td", {}, y.district || ""), el("td", {}, y.joined_on),
    el("td", {}, CATS.map((c) => `${t("sy." + c)}: ${y.counts[c]}`).join(", ")),
    el("td", {}, `${y.cameras.filter((c) => c.state === "recording").length}/${y.cameras.length}`))));
  try {
    const d = await api("/api/v1/safe-yards/dashboard");
    const box = document.getElementById("dashboard");
    box.replaceChildren(
      el("p", {}, Object.entries(d.per_district_year).map(([k, v]) => `${k}: ${Object.entries(v).map(([y, n]) => `${y} — ${n}`).join(", ")}`).join("; ")),
      el("h3", {}, t("sy.offences")),
      el("ul", {}, ...d.items.map((i) => el("li", {}, `${i.yard}: ${i.offences ? `${i.offences.before} / ${i.offences.after}` : "—"}`))),
      el("h3", {}, t("sy.incidents")),
      el("ul", {}, ...d.items.map((i) => el("li", {}, `${i.yard}: ${i.incidents ? `${i.incidents.before} / ${i.incidents.after}` : "—"}`))),
      el("h3", {}, t("sy.to_check")),
      el("ul", {}, ...d.to_check.map((c) => el("li", {class: c.overdue ? "error" : ""}, `${c.date} — ${t("sy." + c.category)} (№${c.safe_yard_id})`))));
  } catch (err) { /* no dashboard for this role */ }
}

async function passportPage(root) {
  const id = root.dataset.yard;
  let p;
  try { p = await api(`/api/v1/safe-yards/${id}`); } catch (err) { document.getElementById("yard-title").textContent = t("common.not_found"); return; }
  document.getElementById("yard-title").textContent = `${p.yard} — ${p.address || ""}`;
  document.getElementById("yard-meta").textContent = `${p.district || ""} · ${t("sy.joined")} ${p.joined_on} · ${p.inspector || ""}`;
  document.getElementById("yard-cameras").replaceChildren(...p.cameras.map((c) => el("li", {}, el("a", {href: `/cameras/${c.id}`}, c.name), ` — ${c.state}`)));
  document.getElementById("counts").textContent = CATS.map((c) => `${t("sy." + c)}: ${p.counts[c]}`).join(" · ");
  const rows = (list) => document.querySelector("#people tbody").replaceChildren(...list.map((x) => el("tr", {},
    el("td", {}, t("sy." + x.category)), el("td", {class: "person"}, x.name || x.tenant || ""),
    el("td", {}, Object.entries(x).filter(([k]) => !["id", "category", "name"].includes(k)).map(([k, v]) => `${k}: ${v ?? ""}`).join("; ")))));
  for (const lang of ["ru", "kk"]) document.getElementById(`print-${lang}`).href = `/api/v1/safe-yards/${id}/passport.pdf?lang=${lang}`;
  if (p.people) {
    rows(p.people);
    const form = document.getElementById("open-form");
    form.hidden = false;
    document.getElementById("import-box").hidden = false;
    const edit = document.getElementById("edit-form");
    document.getElementById("edit-box").hidden = false;
    edit.characteristics.value = Object.entries(p.characteristics || {}).map(([k, v]) => `${k}: ${v}`).join("\n");
    edit.notes.value = p.notes || "";
    edit.addEventListener("submit", async (e) => {
      e.preventDefault();
      const characteristics = Object.fromEntries(edit.characteristics.value.split("\n").filter((l) => l.includes(":"))
        .map((l) => [l.slice(0, l.indexOf(":")).trim(), l.slice(l.indexOf(":") + 1).trim()]));
      try {
        await api(`/api/v1/safe-yards/${id}`, {method: "PATCH", body: {characteristics, notes: edit.notes.value}});
        document.getElementById("edit-result").textContent = "✓";
      } catch (err) { document.getElementById("edit-result").textContent = err.message; }
    });
    document.getElementById("person-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = e.target.elements;
      const fields = Object.fromEntries(f.fields.value.split(";").filter((x) => x.includes("="))
        .map((x) => [x.slice(0, x.indexOf("=")).trim(), x.slice(x.indexOf("=") + 1).trim()]));
      try {
        await api(`/api/v1/safe-yards/${id}/people`, {method: "POST", body: {category: f.category.value, fields}});
        document.getElementById("person-result").textContent = "✓";
      } catch (err) { document.getElementById("person-result").textContent = err.message; }
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const purpose = form.purpose.value;
      rows(await api(`/api/v1/safe-yards/${id}/people?purpose=${encodeURIComponent(purpose)}`));
      const box = document.getElementById("print-personal");
      box.hidden = false;
      box.querySelectorAll("a").forEach((a) => { a.href = `/api/v1/safe-yards/${id}/passport.pdf?lang=${a.dataset.lang}&personal=true&purpose=${encodeURIComponent(purpose)}`; a.target = "_blank"; });
    });
    document.getElementById("import-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = new FormData(e.target);
      const r = await fetch(`/api/v1/safe-yards/${id}/import`, {method: "POST", body, headers: {"X-Requested-With": "kuzet"}});
      const data = await r.json();
      document.getElementById("import-result").textContent = r.ok ? `+${data.imported}` : data.error.message;
    });
  }
  document.getElementById("history").replaceChildren(...p.history.map((h) => el("li", {}, `${h.at.slice(0, 19)} — ${h.action} ${h.details ? JSON.stringify(h.details) : ""}`)));
}

const root = document.getElementById("passport");
if (root) passportPage(root); else listPage();
