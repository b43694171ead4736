// The archive timeline: recorded ranges and gaps from the index, zoom from days to seconds, click to play.
// Under them the camera's events: motion intervals as a band, objects and plates as markers (hover for what, click to
// play the archive from it). Under those, the body-worn and dash camera recordings made near the camera (GPS within a
// few hundred metres) as a lane: click one to play it in step with the camera.
import {api, el, fmtTime, label, t} from "./api.js";

const BAND = {motion: [54, 8], markers: [65, 14], bodycams: [84, 10]};  // y and height under the recorded ranges (18–44) and gaps (44–52)
/** The colours the timeline draws with; the legend is built from the same table, so the two always agree. */
export const COLOURS = {
  recorded: "#2f8f4e", gap: "#c0392b", motion: "#e67e22", object: "#1abc9c", plate: "#e84393",
  position: "#f1c40f", now: "#3498db", bodycam: "#9b59b6",
};
const LEGEND = [["recorded", "video.legend.recorded", "bar"], ["gap", "video.legend.gap", "thin"],
  ["motion", "video.legend.motion", "thin"], ["object", "video.legend.object", "triangle"],
  ["plate", "video.legend.plate", "diamond"], ["position", "video.legend.position", "line"],
  ["now", "video.legend.now", "line"], ["bodycam", "video.legend.bodycam", "bar"]];

/** The legend of the timeline: one item per thing it draws, each with a swatch of the colour and shape used. */
export function timelineLegend() {
  return el("ul", {class: "legend timeline-legend", "data-testid": "timeline-legend"}, ...LEGEND.map(([key, text, shape]) =>
    el("li", {"data-kind": key}, el("i", {class: `swatch ${shape}`, "data-colour": COLOURS[key],
      style: shape === "triangle" || shape === "diamond" ? {color: COLOURS[key]} : {background: COLOURS[key]}}),
    t(text))));
}

export class Timeline {
  constructor(canvas, cameraId, {onSeek, onBodycam = null}) {
    this.canvas = canvas;
    this.cameraId = cameraId;
    this.onSeek = onSeek;
    this.onBodycam = onBodycam;  // given: the lane of body-worn/dash camera recordings near the camera is drawn
    this.bodycams = [];
    this.span = 3600 * 1000;
    this.end = Date.now() + 60 * 1000;
    this.data = {recorded: [], gaps: [], events: []};
    this.position = null;
    this.hits = [];  // where the events were drawn: {x0, x1, y0, y1, event}
    canvas.addEventListener("click", (e) => {
      const hit = this.hitAt(e.offsetX, e.offsetY);
      if (hit && hit.event.kind === "bodycam") {
        const at = Math.min(Math.max(this.timeAt(e.offsetX), Date.parse(hit.event.start)), Date.parse(hit.event.end) - 1);
        this.onBodycam(hit.event.recording, new Date(at));
        return;
      }
      this.onSeek(new Date(hit ? Date.parse(hit.event.start) : this.timeAt(e.offsetX)));
    });
    canvas.addEventListener("mouseleave", () => this.tip(null));
    canvas.addEventListener("wheel", (e) => { e.preventDefault(); this.zoom(e.deltaY > 0 ? 2 : 0.5, this.timeAt(e.offsetX)); });
    let drag = null;
    canvas.addEventListener("mousedown", (e) => { drag = {x: e.offsetX, end: this.end}; });
    window.addEventListener("mouseup", () => { if (drag) this.load(); drag = null; });
    canvas.addEventListener("mousemove", (e) => {
      if (drag && Math.abs(e.offsetX - drag.x) > 3) { this.end = drag.end - (e.offsetX - drag.x) * this.span / this.width; this.draw(); }
      this.tip(drag ? null : this.hitAt(e.offsetX, e.offsetY) || this.gapAt(e.offsetX, e.offsetY), e.offsetX);
    });
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  get width() { return this.canvas.clientWidth || 800; }
  get start() { return this.end - this.span; }
  timeAt(x) { return this.start + (x / this.width) * this.span; }
  xAt(time) { return ((time - this.start) / this.span) * this.width; }

  zoom(factor, around) {
    const newSpan = Math.min(Math.max(this.span * factor, 30 * 1000), 7 * 86400 * 1000);
    const ratio = (around - this.start) / this.span;
    this.span = newSpan;
    this.end = around + (1 - ratio) * newSpan;
    this.load();
  }

  /** Zoom in (factor < 1) or out around the playing position (or now). */
  zoomBy(factor) {
    this.zoom(factor, this.position ? this.position.getTime() : Math.min(Date.now(), this.end));
  }

  setSpan(seconds) {
    const center = this.position ? this.position.getTime() : Date.now();
    this.span = seconds * 1000;
    this.end = Math.min(center + this.span / 2, Date.now() + 0.02 * this.span);
    this.load();
  }

  async load() {
    const start = new Date(this.start).toISOString(), end = new Date(this.end).toISOString();
    try {
      this.data = await api(`/api/v1/cameras/${this.cameraId}/timeline?start=${start}&end=${end}`);
    } catch (err) { /* keep the last data */ }
    if (this.onBodycam) {
      try {
        this.bodycams = await api(`/api/v1/cameras/${this.cameraId}/bodycam-recordings?start=${start}&end=${end}`);
      } catch (err) { /* keep the last lane */ }
      window.KUZET.bodycamLane = this.bodycams.map((r) => r.id);
    }
    this.draw();
  }

  setPosition(date) {
    this.position = date;
    if (date && (date.getTime() > this.end || date.getTime() < this.start)) { this.end = date.getTime() + this.span / 2; this.load(); }
    else this.draw();
  }

  draw() {
    const c = this.canvas, w = this.width, h = c.height;
    c.width = w;
    const g = c.getContext("2d");
    g.fillStyle = "#1e2530"; g.fillRect(0, 0, w, h);
    g.fillStyle = COLOURS.recorded;
    for (const r of this.data.recorded) {
      const x0 = this.xAt(Date.parse(r.start)), x1 = this.xAt(Date.parse(r.end));
      g.fillRect(x0, 18, Math.max(1, x1 - x0), 26);
    }
    g.fillStyle = COLOURS.gap;
    this.gapHits = [];
    for (const gap of this.data.gaps) {
      const x0 = this.xAt(Date.parse(gap.start)), x1 = this.xAt(gap.end ? Date.parse(gap.end) : Date.now());
      g.fillRect(x0, 44, Math.max(1, x1 - x0), 8);
      this.gapHits.push({x0: x0 - 2, x1: Math.max(x1, x0 + 2) + 2, y0: 17, y1: 53, gap});
    }
    this.drawEvents(g, w);
    g.fillStyle = "#ccd"; g.font = "11px sans-serif";
    const step = niceStep(this.span / Math.max(1, w / 110));
    for (let tick = Math.ceil(this.start / step) * step; tick < this.end; tick += step) {
      const x = this.xAt(tick);
      g.fillRect(x, 0, 1, 6);
      const d = new Date(tick);
      // Ticks on the page's clock (the installation's time zone), like the position and the export form.
      const text = step >= 86400000 ? fmtTime(d, {day: "2-digit", month: "2-digit"})
        : step >= 60000 ? fmtTime(d, {hour: "2-digit", minute: "2-digit", hourCycle: "h23"})
          : fmtTime(d, {hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"});
      g.fillText(text, x + 2, 14);
    }
    if (this.position) { g.fillStyle = COLOURS.position; g.fillRect(this.xAt(this.position.getTime()) - 1, 0, 2, h); }
    const now = this.xAt(Date.now());
    g.fillStyle = COLOURS.now; g.fillRect(now, 0, 1, h);
  }

  gapAt(x, y) {
    const hit = (this.gapHits || []).find((h) => x >= h.x0 && x <= h.x1 && y >= h.y0 && y <= h.y1 && y >= 44);
    return hit ? {...hit, gapInfo: hit.gap} : null;
  }

  drawEvents(g, w) {
    // Motion: a band of intervals; objects and plates: markers at their start (plates as diamonds); body-worn and
    // dash camera recordings near the camera: a lane of their own under everything.
    this.hits = [];
    const [by, bh] = BAND.bodycams;
    g.fillStyle = COLOURS.bodycam;
    for (const r of this.bodycams) {
      const x0 = this.xAt(Date.parse(r.started_at)), x1 = Math.max(this.xAt(Date.parse(r.ended_at)), x0 + 4);
      if (x1 < 0 || x0 > w) continue;
      g.fillRect(x0, by, x1 - x0, bh);
      this.hits.push({x0: x0 - 2, x1: x1 + 2, y0: by - 1, y1: by + bh + 1,
        event: {kind: "bodycam", start: r.started_at, end: r.ended_at, recording: r}});
    }
    const events = this.data.events || [];
    const [my, mh] = BAND.motion, [ky, kh] = BAND.markers;
    g.fillStyle = COLOURS.motion;
    for (const e of events) {
      if (e.kind !== "motion") continue;
      const x0 = this.xAt(Date.parse(e.start)), x1 = Math.max(this.xAt(Date.parse(e.end)), x0 + 2);
      if (x1 < 0 || x0 > w) continue;
      g.fillRect(x0, my, x1 - x0, mh);
      this.hits.push({x0: x0 - 2, x1: x1 + 2, y0: my - 1, y1: my + mh + 1, event: e});
    }
    for (const e of events) {
      if (e.kind === "motion") continue;
      const x = this.xAt(Date.parse(e.start));
      if (x < -6 || x > w + 6) continue;
      g.fillStyle = e.kind === "plate" ? COLOURS.plate : COLOURS.object;
      g.beginPath();
      if (e.kind === "plate") {
        g.moveTo(x, ky); g.lineTo(x + 5, ky + kh / 2); g.lineTo(x, ky + kh); g.lineTo(x - 5, ky + kh / 2);
      } else {
        g.moveTo(x, ky); g.lineTo(x + 5, ky + kh); g.lineTo(x - 5, ky + kh);
      }
      g.closePath();
      g.fill();
      this.hits.push({x0: x - 6, x1: x + 6, y0: ky - 1, y1: ky + kh + 1, event: e});
    }
  }

  hitAt(x, y) {
    // Markers drawn later lie on top; the nearest one to the pointer wins.
    let best = null;
    for (const hit of this.hits) {
      if (x < hit.x0 || x > hit.x1 || y < hit.y0 || y > hit.y1) continue;
      const d = Math.abs((hit.x0 + hit.x1) / 2 - x);
      if (hit.event.kind === "bodycam") return {...hit, d};  // a lane of its own: nothing else is drawn there
      if (!best || hit.event.kind !== "motion" && (best.event.kind === "motion" || d < best.d)) best = {...hit, d};
    }
    return best;
  }

  tip(hit, x = 0) {
    this.canvas.style.cursor = hit ? "pointer" : "crosshair";
    if (!this.tipNode) {
      this.tipNode = document.createElement("div");
      this.tipNode.className = "timeline-tip";
      this.tipNode.setAttribute("role", "tooltip");
      this.canvas.parentElement.append(this.tipNode);
    }
    this.tipNode.hidden = !hit;
    if (!hit) return;
    if (hit.gapInfo) {
      const gap = hit.gapInfo;
      this.tipNode.textContent = `${t("video.legend.gap")}: ${label("gap_reason", gap.reason)} — ${fmtTime(new Date(gap.start))}`
        + ` … ${gap.end ? fmtTime(new Date(gap.end)) : t("video.gap_ongoing")}`;
      this.tipNode.style.left = `${Math.max(0, Math.min(x + 10, this.width - 260))}px`;
      this.tipNode.style.top = `${hit.y1 + 4}px`;
      return;
    }
    const e = hit.event;
    if (e.kind === "bodycam") {
      const r = e.recording;
      this.tipNode.textContent = `${t(r.device_kind === "dash" ? "video.bodycam.dash" : "video.bodycam.body")} ${r.serial}`
        + ` — ${fmtTime(new Date(r.started_at))} … ${fmtTime(new Date(r.ended_at))} · ${Math.round(r.distance_m)} ${t("video.bodycam.m")}`;
      this.tipNode.style.left = `${Math.max(0, Math.min(x + 10, this.width - 260))}px`;
      this.tipNode.style.top = `${hit.y0 - 30}px`;
      return;
    }
    const what = [label("event_kind", e.kind), e.label && e.kind !== "plate" ? label("object_label", e.label) : "", e.plate || "",
      e.zone ? `${t("ev.zone")}: ${e.zone}` : ""].filter(Boolean).join(" · ");
    const lasted = (Date.parse(e.end) - Date.parse(e.start)) / 1000;
    this.tipNode.textContent = `${what} — ${fmtTime(new Date(e.start))}${lasted >= 1 ? ` (${Math.round(lasted)} ${t("ops.unit.s")})` : ""}`;
    this.tipNode.style.left = `${Math.max(0, Math.min(x + 10, this.width - 260))}px`;
    this.tipNode.style.top = `${hit.y1 + 4}px`;
  }

  gapNear(time, direction) {
    const gaps = this.data.gaps.map((gap) => ({start: Date.parse(gap.start), end: gap.end ? Date.parse(gap.end) : Date.now(), reason: gap.reason}));
    if (direction > 0) return gaps.find((gap) => gap.start > time + 1000);
    return gaps.reverse().find((gap) => gap.end < time - 1000);
  }
}

function niceStep(ms) {
  const steps = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400].map((s) => s * 1000);
  return steps.find((s) => s >= ms) || 86400000;
}
