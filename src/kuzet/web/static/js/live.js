// Live video: fragmented MP4 over a WebSocket into Media Source Extensions, kept close to the live edge.
import {t} from "./api.js";

export class LivePlayer {
  constructor(video, cameraId, {stream = "main", onMessage = () => {}} = {}) {
    this.video = video;
    this.cameraId = cameraId;
    this.stream = stream;
    this.onMessage = onMessage;
    this.queue = [];
    this.closed = false;
  }

  start() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.ws = new WebSocket(`${proto}//${location.host}/api/v1/cameras/${this.cameraId}/live?stream=${this.stream}`);
    this.ws.binaryType = "arraybuffer";
    this.ws.onmessage = (msg) => this.receive(msg);
    this.ws.onclose = (event) => {
      if (!this.closed && event.code === 4404) this.onMessage(t("common.not_found"));
      else if (!this.closed && !this.source) this.onMessage(t("camera.offline"));
      else if (!this.closed) setTimeout(() => { if (!this.closed) this.restart(); }, 2000);
    };
    this.timer = setInterval(() => this.keepLive(), 1000);
  }

  restart() {
    this.teardown();
    this.queue = [];
    this.start();
  }

  receive(msg) {
    if (typeof msg.data === "string") {
      const header = JSON.parse(msg.data);
      if (header.type === "clock") {
        // wall-clock time of a media time: lets the page show the time and measure glass-to-glass latency
        this.video.kuzetClock = {wall: Date.parse(header.wall), media: header.media};
        return;
      }
      if (header.type === "error") { this.onMessage(t(header.code === "offline" ? "camera.offline" : "common.error")); return; }
      if (!window.MediaSource || !MediaSource.isTypeSupported(header.mime)) {
        this.onMessage(t("camera.unsupported"));
        this.closed = true;
        this.ws.close();
        return;
      }
      this.onMessage(null);
      this.mime = header.mime;
      this.source = new MediaSource();
      this.video.src = URL.createObjectURL(this.source);
      this.source.addEventListener("sourceopen", () => {
        this.buffer = this.source.addSourceBuffer(this.mime);
        this.buffer.mode = "segments";
        this.buffer.addEventListener("updateend", () => this.pump());
        this.pump();
      }, {once: true});
      return;
    }
    this.queue.push(msg.data);
    if (this.queue.length > 50) this.queue.splice(1, this.queue.length - 25);  // never pile up behind a slow tab
    this.pump();
  }

  pump() {
    if (!this.buffer || this.buffer.updating || !this.queue.length) return;
    try {
      this.buffer.appendBuffer(this.queue.shift());
    } catch (err) {
      if (err.name === "QuotaExceededError") this.trim(true);
    }
    if (this.video.paused) this.video.play().catch(() => {});
  }

  /** Seconds between now and the capture time of the frame on screen (null until the server sent a clock). */
  latency() {
    const c = this.video.kuzetClock;
    if (!c || !this.video.currentTime) return null;
    return (Date.now() - (c.wall + (this.video.currentTime - c.media) * 1000)) / 1000;
  }

  keepLive() {
    const v = this.video;
    if (!this.buffer || !v.buffered.length) return;
    const end = v.buffered.end(v.buffered.length - 1);
    if (end - v.currentTime > 1.5) v.currentTime = Math.max(end - 0.3, v.buffered.start(v.buffered.length - 1));
    this.trim(false);
  }

  trim(force) {
    const v = this.video;
    if (!this.buffer || this.buffer.updating || !v.buffered.length) return;
    const start = v.buffered.start(0);
    if (force || v.currentTime - start > 30) this.buffer.remove(start, Math.max(start, v.currentTime - 10));
  }

  teardown() {
    clearInterval(this.timer);
    if (this.ws) { this.ws.onclose = null; this.ws.close(); }
    if (this.video.src && this.video.src.startsWith("blob:")) URL.revokeObjectURL(this.video.src);
    this.buffer = null;
    this.source = null;
  }

  stop() {
    this.closed = true;
    this.teardown();
    this.video.removeAttribute("src");
    this.video.load();
  }
}
