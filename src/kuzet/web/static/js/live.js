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
    this.timer = setInterval(() => this.keepLive(), 250);
  }

  restart() {
    this.teardown();
    this.queue = [];
    this.start();
  }

  receive(msg) {
    if (this.closed) return;  // a message still in flight after stop() must not take the video element back
    if (typeof msg.data === "string") {
      const header = JSON.parse(msg.data);
      if (header.type === "clock") {
        // The next fragment started at this wall-clock time. Its presentation time is read from the buffer once it
        // is appended (edit lists may shift it from the decode time), giving the page the capture time of any frame.
        this.pendingClock = {wall: Date.parse(header.wall), duration: header.duration};
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
        this.buffer.addEventListener("updateend", () => {
          if (this.appending && this.video.buffered.length) {
            const end = this.video.buffered.end(this.video.buffered.length - 1);
            this.video.kuzetClock = {wall: this.appending.wall, media: end - this.appending.duration};
          }
          this.appending = null;
          this.pump();
        });
        this.pump();
      }, {once: true});
      return;
    }
    this.queue.push({data: msg.data, clock: this.pendingClock});
    this.pendingClock = null;
    if (this.queue.length > 50) this.queue.splice(1, this.queue.length - 25);  // never pile up behind a slow tab
    this.pump();
  }

  pump() {
    if (!this.buffer || this.buffer.updating || !this.queue.length) return;
    try {
      const item = this.queue.shift();
      this.appending = item.clock;
      this.buffer.appendBuffer(item.data);
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
    // Stay at the live edge: jump when far behind (a new viewer starts at the last keyframe), speed up a little when
    // slightly behind, so the picture is as fresh as the last fragment allows.
    const v = this.video;
    if (!this.buffer || !v.buffered.length) return;
    const end = v.buffered.end(v.buffered.length - 1);
    const lag = end - v.currentTime;
    if (lag > 0.8) v.currentTime = Math.max(end - 0.15, v.buffered.start(v.buffered.length - 1));
    else v.playbackRate = lag > 0.3 ? 1.15 : 1.0;
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
    if (this.ws) { this.ws.onclose = null; this.ws.onmessage = null; this.ws.close(); }
    if (this.video.src && this.video.src.startsWith("blob:")) URL.revokeObjectURL(this.video.src);
    this.buffer = null;
    this.source = null;
  }

  stop() {
    this.closed = true;
    this.teardown();
    this.video.kuzetClock = null;
    this.video.removeAttribute("src");
    this.video.load();
  }
}
