// The analytics section in the user's words: dynamics with the press release, Gi* hot spots with their terms explained,
// the effect of cameras as a table, a chart and a verdict, street coverage as a figure and a map layer, and the
// placement planner's sites on the map and in a table with the nearest street.
import {api, el, label, t} from "./api.js";
import {count, day, num, pct} from "./words.js";

const form = document.getElementById("period");
const today = new Date();
form.elements.from.value = `${today.getFullYear()}-01-01`;
form.elements.to.value = today.toISOString().slice(0, 10);
const lang = window.KUZET.lang || "ru";
let map = null;
let layer = null;
let planLayer = null;

const LABELLED = new Set(["gravity", "offence_type", "place_type"]);
const HOT = {3: "#c0392b", 2: "#e74c3c", 1: "#f5b7b1", 0: "#bdc3c7", "-1": "#aed6f1", "-2": "#5dade2", "-3": "#2471a3"};

const valueName = (group, key) => (key === null || key === undefined ? t("cr.unknown")
  : LABELLED.has(group) ? label(group, key) : String(key));
/** A term with its explanation as a tooltip (hover, or focus by keyboard / tap). */
const term = (text, key) => el("abbr", {class: "term", title: t(key), tabindex: "0"}, text);

function table(caption, head, rows, numeric = []) {
  const labels = head.map((h) => h);
  return el("table", {class: "list cards"}, caption ? el("caption", {}, caption) : "",
    el("thead", {}, el("tr", {}, ...head.map((h, i) => el("th", {class: numeric.includes(i) ? "num" : ""}, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c, i) =>
      el("td", {"data-label": labels[i], class: numeric.includes(i) ? "num" : ""}, c))))));
}

/** A Leaflet map whose controls speak the page's language (zoom buttons' tooltips, the attribution's link). */
function newMap(id) {
  const m = window.L.map(id, {zoomControl: false});
  window.L.control.zoom({zoomInTitle: t("cr.zoom_in"), zoomOutTitle: t("cr.zoom_out")}).addTo(m);
  m.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  return m;
}

function ensureMap() {
  if (!window.L) return null;
  if (!map) map = newMap("hotmap");
  return map;
}

function legend(node, items) {
  node.replaceChildren(...items.map(([colour, text]) =>
    el("span", {}, el("span", {class: "swatch", style: {background: colour}}), text)));
}

function terms() {
  const list = [["Gi*", "cr.term.gi"], ["z", "cr.term.z"], ["p", "cr.term.p"], ["90/95/99 %", "cr.term.confidence"],
    ["KDE", "cr.term.kde"], ["Moran I", "cr.term.moran"]];
  document.getElementById("terms").replaceChildren(...list.map(([text, key]) => term(text, key)));
  document.getElementById("terms-list").replaceChildren(...list.flatMap(([text, key]) =>
    [el("dt", {}, text), el("dd", {}, t(key))]));
  legend(document.getElementById("hot-legend"), [3, 2, 1, -2].map((lvl) => [HOT[lvl], t(`cr.level.${lvl}`)]));
}

async function run() {
  const q = `from=${form.elements.from.value}&to=${form.elements.to.value}`;
  const rep = await api(`/api/v1/crime/report?${q}`);
  const total = rep.total;
  document.getElementById("total").textContent = t("cr.total_line", {
    crimes: count("cr.n_crimes", total.current), previous: count("cr.n_crimes", total.previous),
    change: total.change_pct === null ? t("cr.no_change") : pct(total.change_pct, true)});
  document.getElementById("press").textContent = rep.press_release[lang] || rep.press_release.ru;
  const head = (g) => [t(`cr.col.${g}`), t("cr.previous"), t("cr.current"), t("cr.change")];
  document.getElementById("breakdowns").replaceChildren(...["gravity", "offence_type", "place_type", "district"].map(
    (g) => el("div", {}, table(t(`cr.by.${g}`), head(g), rep.by[g].map((r) => [valueName(g, r.key), num(r.previous),
      num(r.current), r.change_pct === null ? "—" : pct(r.change_pct, true)]), [1, 2, 3]))));
  try {
    const hot = await api(`/api/v1/crime/hotspots?${q}&permutations=199`);
    document.getElementById("hot-summary").textContent = t("cr.hot_summary", {
      hot: count("cr.n_cells", hot.hot_cells_95), h: num(hot.bandwidth_m, 0), cell: num(hot.gi_cell_m, 0)});
    const moran = hot.moran;
    document.getElementById("moran").textContent = moran ? t("cr.moran_line", {i: num(moran.I, 2), p: num(moran.p_sim, 3),
      meaning: t(moran.I > 0 && moran.p_sim !== null && moran.p_sim <= 0.05 ? "cr.moran.clustered" : "cr.moran.random")}) : "";
    const m = ensureMap();
    if (m) {
      if (layer) layer.remove();
      layer = window.L.geoJSON(hot.gi_star, {
        style: (f) => ({color: HOT[Math.max(-3, Math.min(3, f.properties.level))], weight: 0.5, fillOpacity: 0.55}),
        onEachFeature: (f, lyr) => lyr.bindTooltip(el("span", {}, t("cr.cell_tip", {
          crimes: count("cr.n_crimes", f.properties.count), z: num(f.properties.z, 2), p: num(f.properties.p_sim, 3),
          level: t(`cr.level.${f.properties.level}`)}))),
      }).addTo(m);
      m.fitBounds(layer.getBounds());
      window.KUZET.hotCells = hot.gi_star.features.length;
    }
  } catch (err) { document.getElementById("hot-summary").textContent = err.message; }
}

terms();
form.addEventListener("submit", (e) => { e.preventDefault(); run(); });
run();

function effectView(r) {
  const areas = ["treated", "buffer", "control"];
  const rows = areas.map((a) => {
    const before = r.counts.before[a];
    const after = r.counts.after[a];
    const test = r.areas[a];
    const p = test.p_two_sided === null ? "—" : num(test.p_two_sided, 3);
    return [t(`cr.area.${a}`), num(before), num(after), before ? pct((after - before) * 100 / before, true) : "—",
      t(test.significant ? "cr.significant" : "cr.not_significant", {p})];
  });
  const ci = r.res.ci || [null, null];
  const chart = el("img", {class: "effect-chart", alt: t("cr.effect_chart"), "data-testid": "effect-chart",
    src: URL.createObjectURL(new Blob([r.chart_svg], {type: "image/svg+xml"}))});
  const measures = el("p", {class: "terms"}, term("RES", "cr.term.res"), term("WDQ", "cr.term.wdq"),
    term("WDD", "cr.term.wdd"), el("span", {class: "hint"}, t("cr.measures", {res: num(r.res.res, 2), low: num(ci[0], 2),
      high: num(ci[1], 2), wdq: num(r.wdq.wdq, 2), z: num(r.wdd.z, 2)})));
  return [
    el("p", {class: "hint"}, t("cr.period_line", {before: `${day(r.before.start)} — ${day(r.before.end)}`,
      after: `${day(r.after.start)} — ${day(r.after.end)}`, radius: num(r.radius_m, 0), cameras: count("cr.n_cameras", r.sites)})),
    table("", [t("cr.area"), t("cr.before"), t("cr.after"), t("cr.change"), t("cr.significance")], rows, [1, 2, 3]),
    chart,
    el("p", {class: "verdict", "data-testid": "verdict"}, r.verdict),
    measures,
  ];
}

document.getElementById("effect-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const box = document.getElementById("effect");
  try {
    const r = await api(`/api/v1/crime/effect?installed_from=${f.installed_from.value}` +
      `&installed_to=${f.installed_to.value}&lang=${lang}`);
    box.replaceChildren(...effectView(r));
  } catch (err) { box.replaceChildren(el("p", {class: "error"}, err.message)); }
});

/** Kilometres: two decimals under 1 km («0,12»), one above («6,3»). */
const km = (x) => num(x, x < 1 ? 2 : 1);

if (document.getElementById("coverage")) {
  api("/api/v1/crime/coverage").then((c) => {
    const box = document.getElementById("coverage");
    const parts = [el("p", {class: "figure-big", "data-testid": "coverage-figure"}, t("cr.coverage_figure", {
      share: pct(c.covered_share_pct), covered: km(c.covered_km), total: km(c.street_km)}))];
    if (c.street_offences) {
      parts.push(el("p", {}, t("cr.coverage_offences", {share: pct(c.street_offences_in_view_pct),
        crimes: count("cr.n_crimes", c.street_offences_in_view), total: num(c.street_offences)})));
    }
    parts.push(el("ul", {}, ...c.districts.map((d) => el("li", {}, t("cr.coverage_district", {district: d.district,
      share: pct(d.covered_share_pct), covered: km(d.covered_km), total: km(d.street_km)})))));
    box.replaceChildren(...parts);
    legend(document.getElementById("cov-legend"), [["#7f8c8d", t("cr.legend.street")], ["#27ae60", t("cr.legend.covered")]]);
    if (window.L) {
      const cm = newMap("covmap");
      const streetTip = (f) => el("span", {}, t("cr.street_tip", {name: f.properties.name || "—",
        covered: km(f.properties.covered_m / 1000), total: km(f.properties.length_m / 1000)}));
      const all = window.L.geoJSON(c.streets, {style: {color: "#7f8c8d", weight: 4, opacity: 0.8},
        onEachFeature: (f, lyr) => lyr.bindTooltip(streetTip(f))}).addTo(cm);
      window.L.geoJSON(c.covered, {style: {color: "#27ae60", weight: 7, opacity: 0.95},
        onEachFeature: (f, lyr) => lyr.bindTooltip(streetTip(f))}).addTo(cm);
      cm.fitBounds(all.getBounds(), {padding: [10, 10]});
      window.KUZET.coveredSegments = c.covered.features.length;
    }
  }).catch((err) => { document.getElementById("coverage").replaceChildren(el("p", {class: "error"}, err.message)); });
}

/** The nearest street of the network, with the distance when the site is not on it. */
const address = (s) => (!s.street ? t("cr.no_street") : s.street_distance_m <= 20 ? s.street
  : t("cr.near", {street: s.street, distance: num(s.street_distance_m, 0)}));

document.getElementById("plan-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api(`/api/v1/crime/plan?cameras=${e.target.elements.cameras.value}&from=${form.elements.from.value}&to=${form.elements.to.value}`);
  const head = ["№", t("cr.address"), t("cr.coordinates")];
  const table = document.getElementById("plan");
  table.replaceChildren(
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...r.sites.map((s) => el("tr", {}, el("td", {"data-label": "№"}, num(s.rank)),
      el("td", {"data-label": head[1]}, address(s)),
      el("td", {"data-label": head[2]}, `${num(s.lat, 5)}, ${num(s.lon, 5)}`)))));
  document.getElementById("plan-summary").textContent = t("cr.plan_summary", {
    covered: count("cr.n_crimes", Math.round(r.covered_weight)), total: num(r.total_weight, 0),
    share: pct(r.covered_share * 100), method: t(`cr.method.${r.method}`)});
  const m = ensureMap();
  if (m) {  // the proposed sites as a layer over the hot spots, each with its number and street
    if (planLayer) planLayer.remove();
    planLayer = window.L.geoJSON(r.geojson, {pointToLayer: (f, ll) => window.L.circleMarker(ll, {radius: 9,
      color: "#fff", weight: 2, fillColor: "#8e44ad", fillOpacity: 1})
      .bindTooltip(el("span", {}, `№${f.properties.rank} — ${address(f.properties)}`), {permanent: true, direction: "right"})}).addTo(m);
    legend(document.getElementById("hot-legend"), [...[3, 2, 1, -2].map((lvl) => [HOT[lvl], t(`cr.level.${lvl}`)]),
      ["#8e44ad", t("cr.legend.site")]]);
  }
});
