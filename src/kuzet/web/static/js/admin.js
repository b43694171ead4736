// Administration: places, cameras, users and grants through the same API everyone else uses.
import {allPages, api, el, t} from "./api.js";

const NUMERIC = new Set(["parent_id", "place_id", "organisation_id", "user_id", "camera_id", "lat", "lon"]);
const msg = document.getElementById("admin-message");

async function fill(table) {
  const cols = table.dataset.columns.split(",");
  let items = [];
  try { items = await allPages(table.dataset.source); } catch (err) { table.replaceChildren(el("caption", {}, err.message)); return; }
  const head = el("tr", {}, ...cols.map((c) => el("th", {}, c)), table.dataset.revoke ? el("th") : "");
  table.replaceChildren(el("thead", {}, head), el("tbody", {}, ...items.map((item) => el("tr", {},
    ...cols.map((c) => el("td", {}, Array.isArray(item[c]) ? item[c].join(",") : item[c] ?? "")),
    table.dataset.revoke && !item.revoked_at ? el("td", {}, el("button", {onclick: async () => {
      await api(table.dataset.revoke + item.id, {method: "DELETE"}); fill(table);
    }}, t("admin.revoke"))) : ""))));
}

for (const form of document.querySelectorAll("form[data-endpoint]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    for (const [k, v] of new FormData(form)) {
      if (v === "") continue;
      body[k] = k === "rights" ? v.split(",").map((s) => s.trim()) : NUMERIC.has(k) ? Number(v) : v;
    }
    try {
      await api(form.dataset.endpoint, {method: "POST", body});
      msg.textContent = t("admin.saved");
      form.reset();
      document.querySelectorAll("table[data-source]").forEach(fill);
    } catch (err) { msg.textContent = `${t("common.error")}: ${err.message}`; }
  });
}
document.querySelectorAll("table[data-source]").forEach(fill);
