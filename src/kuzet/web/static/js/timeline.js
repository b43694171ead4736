// The archive timeline: recorded ranges and gaps from the index, zoom from days to seconds, click to play.
import {api, t} from "./api.js";

export class Timeline {
  constructor(canvas, cameraId, {onSeek}) {
    this.canvas = canvas;
    this.cameraId = cameraId;
    this.onSeek = onSeek;
    this.span = 3600 * 1000;
    this.end = Date.now() + 60 * 1000;
    this.data = {recorded: [], gaps: []};
    this.position = null;
    canvas.addEventListener("click", (e) => this.onSeek(new Date(this.timeAt(e.offsetX))));
    canvas.addEventListener("wheel", (e) => { e.preventDefault(); this.zoom(e.deltaY > 0 ? 2 : 0.5, this.timeAt(e.offsetX)); });
    let drag = null;
    canvas.addEventListener("mousedown", (e) => { drag = {x: e.offsetX, end: this.end}; });
    window.addEventListener("mouseup", () => { if (drag) this.load(); drag = null; });
    canvas.addEventListener("mousemove", (e) => {
      if (drag && Math.abs(e.offsetX - drag.x) > 3) { this.end = drag.end - (e.offsetX - drag.x) * this.span / this.width; this.draw(); }
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
    g.fillStyle = "#2f8f4e";
    for (const r of this.data.recorded) {
      const x0 = this.xAt(Date.parse(r.start)), x1 = this.xAt(Date.parse(r.end));
      g.fillRect(x0, 18, Math.max(1, x1 - x0), 26);
    }
    g.fillStyle = "#c0392b";
    for (const gap of this.data.gaps) {
      const x0 = this.xAt(Date.parse(gap.start)), x1 = this.xAt(gap.end ? Date.parse(gap.end) : Date.now());
      g.fillRect(x0, 44, Math.max(1, x1 - x0), 8);
    }
    g.fillStyle = "#ccd"; g.font = "11px sans-serif";
    const step = niceStep(this.span / Math.max(1, w / 110));
    for (let tick = Math.ceil(this.start / step) * step; tick < this.end; tick += step) {
      const x = this.xAt(tick);
      g.fillRect(x, 0, 1, 6);
      const d = new Date(tick);
      const label = step >= 86400000 ? d.toLocaleDateString() : step >= 60000 ? d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}) : d.toLocaleTimeString();
      g.fillText(label, x + 2, 14);
    }
    g.fillStyle = "#fff";
    g.fillText(`${t("camera.recorded")} ▮  ${t("camera.gap")} ▬`, 4, h - 4);
    if (this.position) { g.fillStyle = "#f1c40f"; g.fillRect(this.xAt(this.position.getTime()) - 1, 0, 2, h); }
    const now = this.xAt(Date.now());
    g.fillStyle = "#3498db"; g.fillRect(now, 0, 1, h);
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
