// Shared pieces of the operations pages: priorities, offence types, durations, local date inputs and the live feed
// of alarms and incidents (one WebSocket, reconnected when it drops).
import {api, el, fmtTime, t} from "./api.js";
import {dayAfter, fromZoned, zonedDate, zonedInput} from "./zone.js";

export const PRIORITIES = ["critical", "high", "medium", "low"];
export const RANK = {critical: 4, high: 3, medium: 2, low: 1};

export const when = (iso) => (iso ? fmtTime(new Date(iso)) : "—");
const LOCALES = {ru: "ru-RU", kk: "kk-KZ", en: "en-GB"};
/** The time of day in the page's language and time zone (what a status line shows). */
export const clock = (d = new Date()) => fmtTime(d, {timeStyle: "medium"});
export const prioBadge = (p) => el("span", {class: `prio prio-${p}`}, t(`ops.prio.${p}`));
export const stateBadge = (prefix, s) => el("span", {class: `badge st-${s}`}, t(`${prefix}.${s}`));

/** 75 → "1 min 15 s" in the page's language; null → "—". */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 10) {  // short times (a crew already near) keep a tenth, in the page's number format
    const short = seconds.toLocaleString(LOCALES[window.KUZET.lang] || "ru-RU", {maximumFractionDigits: 1});
    return `${short} ${t("ops.unit.s")}`;
  }
  const s = Math.round(seconds);
  if (s < 60) return `${s} ${t("ops.unit.s")}`;
  const m = Math.floor(s / 60), rest = s % 60;
  if (m < 60) return rest ? `${m} ${t("ops.unit.min")} ${rest} ${t("ops.unit.s")}` : `${m} ${t("ops.unit.min")}`;
  const h = Math.floor(m / 60);
  return `${h} ${t("ops.unit.h")} ${m % 60} ${t("ops.unit.min")}`;
}

let types = null;
/** Offence types as [{id, name}] in the page's language (the crime analytics' types). */
export async function offenceTypes() {
  if (!types) {
    const data = await api("/api/v1/incidents/types");
    const lang = window.KUZET.lang;
    types = data.items.map((x) => ({id: x.id, name: x[lang] || x.ru}));
  }
  return types;
}

export async function offenceName(id) {
  const found = (await offenceTypes()).find((x) => x.id === id);
  return found ? found.name : id;
}

/** A Date as the value of a datetime-local input (seconds), on the page's clock (its time zone, not the browser's). */
export const localInput = (d) => zonedInput(d);
export const localDate = (d) => zonedDate(d);
/** The value of a datetime-local or date input (the page's time zone) as an ISO instant; "" stays "". */
export const isoOf = (value) => (value ? fromZoned(value).toISOString() : "");
/** The end of a date input's day (the next midnight in the page's time zone) as an ISO instant. */
export const endOfDay = (value) => dayAfter(value);

/** A status line for errors of an action: "Error: …" next to what failed. */
export function showError(node, err) {
  node.textContent = `${t("common.error")}: ${err.message || err}`;
  node.classList.add("error");
}

/**
 * The live feed of the operator's organisation: {type: raised|acknowledged|dismissed|incident, alarm} and
 * {type: "incident", change, incident}. Reconnects with a growing pause when the socket drops and calls
 * onConnect after every (re)connection, so the page can fetch what it missed.
 */
export class OpsFeed {
  constructor({onMessage = () => {}, onConnect = () => {}, onState = () => {}} = {}) {
    Object.assign(this, {onMessage, onConnect, onState});
    this.backoff = 1000;
    this.stopped = false;
  }

  start() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/alarms/live`);
    this.ws = ws;
    this.onState("connecting");
    ws.onmessage = (msg) => {
      let data;
      try { data = JSON.parse(msg.data); } catch (err) { return; }
      if (data.type === "hello") {
        this.backoff = 1000;
        this.onState("open");
        this.onConnect();
      } else if (data.type === "error") {
        this.onState("down");
      } else {
        this.onMessage(data);
      }
    };
    ws.onclose = (event) => {
      clearInterval(this.ping);
      if (this.stopped) return;
      if (event.code === 4401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
      if (event.code === 4404) { this.onState("forbidden"); return; }
      this.onState("down");
      setTimeout(() => { if (!this.stopped) this.start(); }, this.backoff);
      this.backoff = Math.min(this.backoff * 2, 15000);
    };
    // The server only listens to notice us leaving; a ping now and then keeps proxies from closing an idle socket.
    this.ping = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send("ping"); }, 25000);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.ping);
    this.ws?.close();
  }
}

/** The connection badge of a page with a live feed. */
export function feedBadge(node) {
  return (state) => {
    window.KUZET.feed = state;
    node.textContent = t(`ops.feed.${state}`);
    node.className = `badge feed-${state}`;
  };
}

/** A small SVG bar chart: rows [{label, values: [number|null…]}], series [{name, cls}], unit formatter. */
export function barChart(rows, series, format = (v) => String(v), {title = "", width = 640} = {}) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs = {}, text) => {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const labelW = Math.min(190, width * 0.35), barH = 14, gap = 3;
  const groupH = series.length * (barH + gap) + 8;
  const height = Math.max(groupH * rows.length + 24, 40);
  const max = Math.max(1e-9, ...rows.flatMap((r) => r.values.filter((v) => v !== null && v !== undefined)));
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, class: "bars", role: "img", "aria-label": title});
  if (title) chart.append(svg("title", {}, title));
  rows.forEach((row, i) => {
    const y0 = 6 + i * groupH;
    chart.append(svg("text", {x: labelW - 6, y: y0 + groupH / 2, "text-anchor": "end", class: "bar-label"},
      row.label.length > labelW / 7 ? `${row.label.slice(0, Math.floor(labelW / 7) - 1)}…` : row.label));
    series.forEach((s, k) => {
      const v = row.values[k];
      const y = y0 + k * (barH + gap);
      const w = v === null || v === undefined ? 0 : Math.max(2, ((width - labelW - 120) * v) / max);
      chart.append(svg("rect", {x: labelW, y, width: w, height: barH, class: `bar ${s.cls}`}));
      chart.append(svg("text", {x: labelW + w + 4, y: y + barH - 3, class: "bar-value"},
        `${s.name}: ${v === null || v === undefined ? "—" : format(v)}`));
    });
  });
  return chart;
}
