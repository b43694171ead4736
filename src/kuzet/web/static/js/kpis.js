// Response-time figures per unit and period (time to acknowledge, to dispatch, to arrival: median and p90) and
// false-alarm rates per camera and per rule, as tables and small SVG bar charts.
import {api, el, t} from "./api.js";
import {barChart, endOfDay, fmtDuration, isoOf, localDate, showError} from "./ops.js";

const form = document.getElementById("kpi-form");
const cityWide = form.dataset.cityWide === "true";
const errorLine = document.getElementById("kpi-error");
const today = new Date();
form.elements.from.value = localDate(new Date(today.getTime() - 29 * 86400000));
form.elements.to.value = localDate(today);
const METRICS = [["time_to_acknowledge", "kpi.tta", "tta"], ["time_to_dispatch", "kpi.ttd", "ttd"],
  ["time_to_arrival", "kpi.arrival", "arrival"]];
const pct = (v) => (v === null || v === undefined ? "—" : `${v} %`);

async function run() {
  const start = isoOf(form.elements.from.value);
  const end = endOfDay(form.elements.to.value);
  let query = `start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;
  if (form.elements.organisation.value) query += `&organisation=${form.elements.organisation.value}`;
  let data;
  try { data = await api(`/api/v1/operations/kpis?${query}`); errorLine.textContent = ""; }
  catch (err) { showError(errorLine, err); return; }
  const unitName = (u) => u.organisation || t("kpi.no_unit");

  document.querySelector("#kpi-units tbody").replaceChildren(...data.units.map((u) => el("tr", {"data-unit": u.organisation_id ?? ""},
    el("th", {scope: "row"}, unitName(u)),
    el("td", {}, `${u.alarms}`, u.alarms_open ? el("div", {class: "hint"}, `${t("kpi.open")}: ${u.alarms_open}`) : ""),
    el("td", {}, pct(u.false_alarm_rate), el("div", {class: "hint"}, `${u.false_alarms}`)),
    el("td", {}, `${u.incidents}`, el("div", {class: "hint"}, `${t("kpi.closed")}: ${u.incidents_closed}`)),
    ...METRICS.flatMap(([key, , id]) => [
      el("td", {"data-testid": `${id}-median`}, fmtDuration(u[key].median)),
      el("td", {"data-testid": `${id}-p90`}, fmtDuration(u[key].p90))]))));
  if (!data.units.length) {
    document.querySelector("#kpi-units tbody").replaceChildren(el("tr", {}, el("td", {colspan: 10, class: "hint"}, t("kpi.nothing"))));
  }

  const charts = document.getElementById("kpi-charts");
  const rows = data.units.flatMap((u) => METRICS.map(([key, label]) => ({
    label: `${data.units.length > 1 ? `${unitName(u)} · ` : ""}${t(label)}`, values: [u[key].median, u[key].p90]})));
  const anyTime = rows.some((r) => r.values.some((v) => v !== null && v !== undefined));
  charts.replaceChildren(...(anyTime ? [el("h3", {}, t("kpi.times_chart")),
    barChart(rows, [{name: t("kpi.median"), cls: "s1"}, {name: "p90", cls: "s2"}], fmtDuration, {title: t("kpi.times_chart")})] : []));

  for (const [what, list] of [["cameras", data.cameras], ["rules", data.rules]]) {
    document.querySelector(`#kpi-${what} tbody`).replaceChildren(...list.map((r) => el("tr", {},
      el("td", {}, r.name || `#${r.camera_id ?? r.rule_id}`), el("td", {}, r.alarms), el("td", {}, r.decided),
      el("td", {}, r.false_alarms), el("td", {}, pct(r.false_alarm_rate)))));
    const chartRows = list.filter((r) => r.decided).slice(0, 15).map((r) => ({label: r.name || "—", values: [r.false_alarm_rate]}));
    document.getElementById(`kpi-${what}-chart`).replaceChildren(...(chartRows.length
      ? [barChart(chartRows, [{name: t("kpi.false_rate"), cls: "s3"}], (v) => `${v} %`, {title: t(`kpi.by_${what === "cameras" ? "camera" : "rule"}`), width: 480})]
      : [el("p", {class: "hint"}, t("kpi.nothing"))]));
  }

  // City-wide readers, and a control centre reading every district it coordinates, may narrow to one unit.
  if ((cityWide || data.units.length > 1) && !form.elements.organisation.value
      && form.elements.organisation.options.length === 1) {
    document.getElementById("unit-choice").hidden = false;
    form.elements.organisation.append(...data.units.filter((u) => u.organisation_id)
      .map((u) => el("option", {value: u.organisation_id}, unitName(u))));
  }
  window.KUZET.kpis = data;
}

form.addEventListener("submit", (event) => { event.preventDefault(); run(); });
run();
