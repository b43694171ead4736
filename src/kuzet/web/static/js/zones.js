// The camera page's "Analysis" panel: motion, objects and plates settings, and zones / masks drawn as polygons over
// the camera's current picture (points stored as 0..1 of the picture). Without the manage right it is read-only.
import {api, el, t, tn} from "./api.js";
import {showError} from "./ops.js";

const NS = "http://www.w3.org/2000/svg";
const CLOSE_DISTANCE = 0.025;  // a click this near the first point closes the polygon

export function analysisPanel(panel, cameraId) {
  const form = panel.querySelector("#analysis-form");
  const state = panel.querySelector("#analysis-state");
  const saved = panel.querySelector("#analysis-saved");
  const picture = panel.querySelector("#zone-picture");
  const pictureMessage = panel.querySelector("#zone-picture-message");
  const svg = panel.querySelector("#zone-svg");
  const labels = panel.querySelector("#zone-labels");
  const list = panel.querySelector("#zone-list");
  const kindSelect = panel.querySelector("#zone-kind");
  const buttons = Object.fromEntries(["new", "close", "undo", "cancel"].map((k) => [k, panel.querySelector(`#zone-${k}`)]));
  let manage = panel.dataset.manage === "true";
  let zones = [];  // [{name, kind, points: [[x, y]…]}]
  let draft = null;  // points of the polygon being drawn
  let selected = null;
  let loaded = false;
  window.KUZET.analysis = {loaded: false};

  // --- the picture ------------------------------------------------------------------------------------------------
  function loadPicture() {
    // The current picture is a live view (audited): fetched only when the panel is opened or the user asks again.
    pictureMessage.hidden = true;
    picture.src = `/api/v1/cameras/${cameraId}/snapshot.jpg?t=${Date.now()}`;
  }
  picture.addEventListener("error", () => { pictureMessage.textContent = t("an.no_picture"); pictureMessage.hidden = false; });
  picture.addEventListener("load", () => { window.KUZET.analysis.picture = true; });
  panel.querySelector("#zone-picture-refresh").addEventListener("click", loadPicture);

  // --- drawing ----------------------------------------------------------------------------------------------------
  const node = (tag, attrs) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    return n;
  };
  const pts = (points) => points.map(([x, y]) => `${x},${y}`).join(" ");

  function draw() {
    svg.replaceChildren();
    labels.replaceChildren();
    zones.forEach((z, i) => {
      svg.append(node("polygon", {points: pts(z.points), class: `zone-shape ${z.kind}${i === selected ? " selected" : ""}`,
        "vector-effect": "non-scaling-stroke"}));
      const cx = z.points.reduce((s, p) => s + p[0], 0) / z.points.length;
      const cy = z.points.reduce((s, p) => s + p[1], 0) / z.points.length;
      labels.append(el("span", {class: `zone-label ${z.kind}`, style: {left: `${cx * 100}%`, top: `${cy * 100}%`}}, z.name));
    });
    if (draft) {
      svg.append(node("polyline", {points: pts(draft), class: "zone-draft", "vector-effect": "non-scaling-stroke"}));
      draft.forEach(([x, y], i) => labels.append(el("span", {class: `zone-point${i === 0 ? " first" : ""}`,
        style: {left: `${x * 100}%`, top: `${y * 100}%`}})));
    }
    buttons.close.disabled = !draft || draft.length < 3;
    buttons.undo.disabled = !draft || !draft.length;
    buttons.cancel.disabled = !draft;
    buttons.new.disabled = Boolean(draft) || !manage;
    panel.querySelector("#zone-editor").classList.toggle("drawing", Boolean(draft));
  }

  function finish() {
    if (!draft || draft.length < 3) return;
    const kind = kindSelect.value;
    let n = zones.filter((z) => z.kind === kind).length + 1;
    const base = kind === "mask" ? t("an.kind.mask") : t("an.kind.zone");
    while (zones.some((z) => z.name === `${base} ${n}`)) n += 1;
    zones.push({name: `${base} ${n}`, kind, points: draft.map(([x, y]) => [round(x), round(y)])});
    selected = zones.length - 1;
    draft = null;
    renderList();
    draw();
    list.querySelector(`[data-zone="${selected}"] input[name=zone-name]`)?.focus();
  }

  svg.addEventListener("click", (event) => {
    if (!draft) return;
    const box = svg.getBoundingClientRect();
    const x = clamp((event.clientX - box.left) / box.width), y = clamp((event.clientY - box.top) / box.height);
    if (draft.length >= 3 && Math.hypot(x - draft[0][0], y - draft[0][1]) < CLOSE_DISTANCE) { finish(); return; }
    draft.push([x, y]);
    draw();
  });
  buttons.new.addEventListener("click", () => { draft = []; selected = null; draw(); });
  buttons.close.addEventListener("click", finish);
  buttons.undo.addEventListener("click", () => { draft?.pop(); draw(); });
  buttons.cancel.addEventListener("click", () => { draft = null; draw(); });

  function renderList() {
    list.replaceChildren(...zones.map((z, i) => {
      const name = el("input", {name: "zone-name", value: z.name, maxlength: "100", required: "",
        "aria-label": t("an.zone_name")});
      const kind = el("select", {"aria-label": t("an.zone_kind")},
        el("option", {value: "zone"}, t("an.kind.zone")), el("option", {value: "mask"}, t("an.kind.mask")));
      kind.value = z.kind;
      name.addEventListener("input", () => { z.name = name.value; draw(); });
      kind.addEventListener("change", () => { z.kind = kind.value; draw(); });
      name.addEventListener("focus", () => { selected = i; draw(); });
      if (!manage) { name.disabled = true; kind.disabled = true; }
      return el("li", {"data-zone": i, class: z.kind}, name, kind,
        el("span", {class: "hint"}, tn("an.points_n", z.points.length)),
        manage ? el("button", {type: "button", class: "danger", "data-act": "delete-zone", onclick: () => {
          zones.splice(i, 1);
          selected = null;
          renderList();
          draw();
        }}, t("an.zone_delete")) : "");
    }));
    if (!zones.length) list.replaceChildren(el("li", {class: "hint"}, t("an.no_zones")));
  }

  // --- settings ---------------------------------------------------------------------------------------------------
  const f = form.elements;
  f.sensitivity.addEventListener("input", () => { f.sensitivity_out.value = f.sensitivity.value; });

  function readOnly(reason) {
    manage = false;
    for (const input of form.querySelectorAll("input, select, button")) {
      if (input.id !== "zone-picture-refresh") input.disabled = true;
    }
    panel.classList.add("readonly");
    state.textContent = reason;
    renderList();
    draw();
  }

  function fill(a) {
    f.motion.checked = a.motion;
    f.fps.value = a.fps;
    f.sensitivity.value = a.sensitivity;
    f.sensitivity_out.value = a.sensitivity;
    f.min_area.value = +(a.min_area * 100).toFixed(3);
    f.objects.checked = a.objects;
    f.detector.value = a.detector;
    f.anpr.checked = Boolean(a.anpr);
    f.stream.value = a.stream;
    zones = (a.zones || []).map((z) => ({name: z.name, kind: z.kind, points: z.points.map((p) => [p[0], p[1]])}));
    const what = a.analysed ? `${t("an.analysed")} (${t("an.stream." + a.analysed_stream)})` : t("an.not_analysed");
    state.textContent = `${what}${a.customised ? "" : ` · ${t("an.defaults")}`}${manage ? "" : ` · ${t("an.read_only")}`}`;
    renderList();
    draw();
  }

  async function load() {
    try {
      fill(await api(`/api/v1/cameras/${cameraId}/analysis`));
      if (!manage) readOnly(state.textContent);
    } catch (err) { showError(state, err); }
    loaded = true;
    window.KUZET.analysis.loaded = true;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    saved.textContent = "";
    saved.className = "";
    if (draft) finish();
    const body = {
      motion: f.motion.checked, fps: Number(f.fps.value), sensitivity: Number(f.sensitivity.value),
      min_area: Number(f.min_area.value) / 100, objects: f.objects.checked, detector: f.detector.value,
      anpr: f.anpr.checked, stream: f.stream.value,
      zones: zones.map((z) => ({name: z.name.trim(), kind: z.kind, points: z.points})),
    };
    try {
      fill(await api(`/api/v1/cameras/${cameraId}/analysis`, {method: "PUT", body}));
      saved.textContent = t("an.saved");
      window.KUZET.analysis.saved = (window.KUZET.analysis.saved || 0) + 1;
    } catch (err) {
      if (err.status === 403) readOnly(t("an.read_only"));
      else showError(saved, err);
    }
  });

  panel.addEventListener("toggle", () => {
    if (!panel.open) return;
    if (!loaded) load();
    if (!picture.getAttribute("src")) loadPicture();
  });
  renderList();
  draw();
}

const clamp = (v) => Math.min(1, Math.max(0, v));
const round = (v) => Math.round(v * 10000) / 10000;
