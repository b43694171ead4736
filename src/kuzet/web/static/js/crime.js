// The analytics section: dynamics with the press release in the user's language, Gi* hot spots on a map,
// the effect of cameras, street coverage and the placement planner.
import {api, el, t} from "./api.js";

const form = document.getElementById("period");
const today = new Date();
const year = today.getFullYear();
form.elements.from.value = `${year}-01-01`;
form.elements.to.value = today.toISOString().slice(0, 10);
let map = null;
let layer = null;
let planLayer = null;

async function run() {
  const q = `from=${form.elements.from.value}&to=${form.elements.to.value}`;
  const rep = await api(`/api/v1/crime/report?${q}`);
  const total = rep.total;
  document.getElementById("total").textContent =
    `${t("cr.total")}: ${total.current} (${t("cr.previous")}: ${total.previous}; ${total.change_pct ?? "—"} %)`;
  document.getElementById("press").textContent = rep.press_release[window.KUZET.lang] || rep.press_release.ru;
  document.getElementById("breakdowns").replaceChildren(...["gravity", "offence_type", "place_type", "district"].map((g) =>
    el("table", {class: "list"}, el("caption", {}, g), el("tr", {}, el("th"), el("th", {}, t("cr.previous")),
      el("th", {}, t("cr.current")), el("th", {}, t("cr.change"))),
      ...rep.by[g].map((r) => el("tr", {}, el("td", {}, r.key ?? "—"), el("td", {}, r.previous), el("td", {}, r.current),
        el("td", {}, r.change_pct ?? "—"))))));
  try {
    const hot = await api(`/api/v1/crime/hotspots?${q}&permutations=199`);
    document.getElementById("hot-summary").textContent =
      `Gi* 95 %: ${hot.hot_cells_95} · KDE h = ${hot.bandwidth_m} m · cell ${hot.gi_cell_m} m` +
      (hot.moran ? ` · Moran's I = ${hot.moran.I} (p = ${hot.moran.p_sim ?? "—"})` : "");
    if (window.L) {
      if (!map) map = window.L.map("hotmap");
      if (layer) layer.remove();
      const colour = (lvl) => (lvl >= 3 ? "#c0392b" : lvl === 2 ? "#e74c3c" : lvl === 1 ? "#f5b7b1" : lvl <= -2 ? "#2980b9" : "#bdc3c7");
      layer = window.L.geoJSON(hot.gi_star, {style: (f) => ({color: colour(f.properties.level), weight: 0.5,
        fillOpacity: 0.55})}).addTo(map);
      map.fitBounds(layer.getBounds());
      window.KUZET.hotCells = hot.gi_star.features.length;
    }
  } catch (err) { document.getElementById("hot-summary").textContent = err.message; }
}

form.addEventListener("submit", (e) => { e.preventDefault(); run(); });
run();

document.getElementById("effect-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const r = await api(`/api/v1/crime/effect?installed_from=${f.installed_from.value}&installed_to=${f.installed_to.value}`);
  document.getElementById("effect").textContent =
    `${JSON.stringify(r.counts)}\nRES ${r.res.res} [${r.res.ci}] · WDQ ${r.wdq.wdq ?? "—"} · WDD z ${r.wdd.z}\n${t("cr.verdict")}: ${r.verdict}`;
});
if (document.getElementById("coverage")) {
  api("/api/v1/crime/coverage").then((c) => {
    document.getElementById("coverage").textContent =
      `${c.covered_share_pct} % — ${c.covered_km} / ${c.street_km} km; ${c.street_offences_in_view_pct ?? "—"} %`;
  }).catch((err) => { document.getElementById("coverage").textContent = err.message; });
}
document.getElementById("plan-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api(`/api/v1/crime/plan?cameras=${e.target.elements.cameras.value}&from=${form.elements.from.value}&to=${form.elements.to.value}`);
  document.getElementById("plan").replaceChildren(...r.sites.map((s) => el("li", {}, `${s.lat}, ${s.lon}`)),
    el("p", {class: "hint"}, `${r.method} · ${r.covered_weight}/${r.total_weight} · bound ${r.upper_bound}`));
  if (map && window.L) {  // the proposed sites as a layer over the hot spots
    if (planLayer) planLayer.remove();
    planLayer = window.L.geoJSON(r.geojson, {pointToLayer: (f, ll) => window.L.circleMarker(ll, {radius: 9,
      color: "#fff", weight: 2, fillColor: "#8e44ad", fillOpacity: 1}).bindTooltip(`#${f.properties.rank}`)}).addTo(map);
  }
});
