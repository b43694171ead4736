// Incidents: the list (status filter, CSV/JSON export) and one incident — details, status timeline, linked cameras
// with their clips, notes, crews with their reported times, dispatch and closing. Changes arrive over the live feed.
import {allPages, api, el, t} from "./api.js";
import {
  OpsFeed, endOfDay, feedBadge, isoOf, localDate, localInput, offenceName, offenceTypes, prioBadge, showError,
  stateBadge, when,
} from "./ops.js";

const ACTIVE = ["open", "dispatched", "en_route", "on_scene"];
const detailRoot = document.getElementById("incident-page");
if (detailRoot) detailPage(detailRoot); else listPage();

// --- the list -------------------------------------------------------------------------------------------------------
async function listPage() {
  const filter = document.getElementById("status-filter");
  const body = document.querySelector("#incidents tbody");
  const errorLine = document.getElementById("incidents-error");
  await offenceTypes().catch(() => []);
  async function load() {
    const wanted = filter.value === "active" ? ACTIVE : filter.value === "all" ? [] : [filter.value];
    const query = [...wanted.map((s) => `status=${s}`), "limit=500"].join("&");
    try {
      const data = await api(`/api/v1/incidents?${query}`);
      const rows = [];
      for (const i of data.items) {
        const heads = [...document.querySelectorAll("#incidents thead th")].map((th) => th.textContent);
        const cell = (k, ...children) => el("td", {"data-label": heads[k] || ""}, ...children);
        rows.push(el("tr", {"data-incident": i.id},
          cell(0, el("a", {href: `/incidents/${i.id}`}, `№${i.id}`)), cell(1, when(i.created_at)),
          cell(2, await offenceName(i.offence_type)), cell(3, el("a", {href: `/incidents/${i.id}`}, i.title)),
          cell(4, i.place ? i.place.name : "—"), cell(5, prioBadge(i.priority)),
          cell(6, stateBadge("inc.status", i.status))));
      }
      body.replaceChildren(...rows);
      document.getElementById("incidents-empty").hidden = rows.length > 0;
      errorLine.textContent = "";
    } catch (err) { showError(errorLine, err); }
    window.KUZET.incidentsLoaded = true;
  }
  filter.addEventListener("change", load);
  load();

  const form = document.getElementById("export-form");
  const today = new Date();
  form.elements.from.value = localDate(new Date(today.getTime() - 30 * 86400000));
  form.elements.to.value = localDate(today);
  const links = () => {
    const start = isoOf(form.elements.from.value);
    const end = form.elements.to.value ? endOfDay(form.elements.to.value) : "";
    for (const format of ["csv", "json"]) {
      document.getElementById(`export-${format}`).href =
        `/api/v1/incidents/export?start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}&format=${format}`;
    }
  };
  form.addEventListener("input", links);
  links();

  let timer = null;
  new OpsFeed({
    onState: feedBadge(document.getElementById("feed-state")),
    onMessage: (msg) => {
      if (msg.type !== "incident") return;
      clearTimeout(timer);
      timer = setTimeout(load, 300);
    },
  }).start();
}

// --- one incident ---------------------------------------------------------------------------------------------------
function detailPage(root) {
  const id = Number(root.dataset.incident);
  const operator = root.dataset.operator === "true";
  const errorLine = document.getElementById("inc-error");
  const cameraNodes = new Map();  // link id → node, kept across updates so a playing clip keeps playing
  let current = null;
  let shownCrews = null;  // the crews the responder checkboxes were made for (a push does not reset a choice)

  async function fetchIncident() {
    try { show(await api(`/api/v1/incidents/${id}`)); errorLine.textContent = ""; }
    catch (err) { showError(errorLine, err); }
  }

  async function show(inc) {
    current = inc;
    const closed = inc.status === "closed";
    const type = await offenceName(inc.offence_type);
    document.getElementById("inc-title").textContent = `${t("inc.one")} №${inc.id}: ${inc.title}`;
    document.getElementById("inc-status").replaceChildren(stateBadge("inc.status", inc.status));
    document.getElementById("inc-status").dataset.status = inc.status;
    document.getElementById("inc-priority").replaceChildren(prioBadge(inc.priority));
    const fact = (key, ...value) => [el("dt", {}, t(key)), el("dd", {}, ...value)];
    const coords = inc.lat !== null && inc.lat !== undefined
      ? [`${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)} `, el("a", {href: `geo:${inc.lat},${inc.lon}`}, t("resp.map"))] : ["—"];
    document.getElementById("inc-facts").replaceChildren(
      ...fact("inc.type", type), ...fact("inc.place", inc.place ? inc.place.name : "—"),
      ...fact("inc.address", (inc.place && inc.place.address) || "—"), ...fact("inc.coords", ...coords),
      ...fact("inc.unit", inc.organisation ? inc.organisation.name : "—"),
      ...fact("inc.opened", `${when(inc.created_at)} · ${inc.created_by || ""}`),
      ...(inc.description ? fact("inc.description", inc.description) : []),
      ...fact("inc.alarms", (inc.alarms || []).map((a) => `${a.title} (${when(a.raised_at)})`).join("; ") || "—"),
      ...(closed ? [...fact("inc.closed_at", when(inc.closed_at)), ...fact("inc.resolution", inc.resolution || "")] : []));

    document.getElementById("inc-timeline").replaceChildren(...(inc.timeline || []).map((e) => el("li", {"data-kind": e.kind},
      el("time", {datetime: e.at}, when(e.at)), " ", el("strong", {}, t(`inc.entry.${e.kind}`)),
      e.text ? ` — ${e.text}` : "", e.actor ? el("span", {class: "hint"}, ` · ${e.actor}`) : "")));

    const box = document.getElementById("inc-cameras");
    const links = inc.cameras || [];
    for (const link of links) {
      if (!cameraNodes.has(link.id)) cameraNodes.set(link.id, cameraNode(link));
    }
    box.replaceChildren(...links.map((l) => cameraNodes.get(l.id)));
    if (!links.length) box.replaceChildren(el("p", {class: "hint"}, t("inc.no_cameras")));

    const heads = [...document.querySelectorAll("#inc-crews thead th")].map((th) => th.textContent);
    const cell = (i, attrs, ...children) => el("td", {"data-label": heads[i] || "", ...attrs}, ...children);
    document.querySelector("#inc-crews tbody").replaceChildren(...(inc.dispatches || []).map((d) => el("tr", {
      "data-dispatch": d.id, "data-status": d.status},
      cell(0, {}, d.responder_name ? `${d.responder} — ${d.responder_name}` : d.responder,
        d.organisation ? el("div", {class: "hint"}, d.organisation) : ""),
      cell(1, {}, stateBadge("disp", d.status)), cell(2, {}, when(d.sent_at), el("div", {class: "hint"}, d.sent_by || "")),
      cell(3, {}, when(d.acknowledged_at)), cell(4, {}, when(d.en_route_at)),
      cell(5, {"data-testid": "on-scene-at"}, when(d.on_scene_at)), cell(6, {}, when(d.closed_at)))));

    for (const sel of ["#dispatch-form", "#close-box", "#link-box"]) {
      const node = document.querySelector(sel);
      if (node) node.hidden = closed;
    }
    const crewKey = (inc.dispatches || []).map((d) => `${d.id}:${d.status}`).join(",");
    if (operator && !closed && crewKey !== shownCrews) { shownCrews = crewKey; loadResponders(); }
    window.KUZET.incident = {id: inc.id, status: inc.status, dispatches: (inc.dispatches || []).length};
  }

  function cameraNode(link) {
    const video = el("video", {controls: "", playsinline: "", muted: "", preload: "none", "data-testid": "clip-video"});
    video.muted = true;
    const note = el("p", {class: "hint"});
    const play = el("button", {type: "button", "data-act": "play-clip", onclick: () => {
      video.hidden = false;
      if (!video.getAttribute("src")) video.src = link.clip_url;  // fetched (and audited) only when asked for
      video.play().catch(() => {});
    }}, t("al.play_clip"));
    video.hidden = true;
    video.addEventListener("error", () => { note.textContent = t("al.no_clip"); });
    return el("div", {class: "inc-camera", "data-link": link.id},
      el("div", {}, el("a", {href: `/cameras/${link.camera_id}?at=${encodeURIComponent(new Date(link.start_at).toISOString())}`},
        link.camera_name), " ", el("span", {class: "hint"}, `${when(link.start_at)} — ${when(link.end_at)}`)),
      play, video, note);
  }

  let responderLoad = null;
  async function loadResponders() {
    if (responderLoad) return;
    responderLoad = (async () => {
      const box = document.getElementById("responders");
      try {
        const data = await api(`/api/v1/incidents/${id}/responders`);
        const onThis = new Set((current.dispatches || []).filter((d) => d.status !== "closed").map((d) => d.responder_id));
        const crew = (r, neighbour) => el("label", {class: `check${neighbour ? " neighbour" : ""}`, "data-responder": r.id},
          el("input", {type: "checkbox", name: "responder", value: r.id, ...(onThis.has(r.id) ? {disabled: ""} : {})}),
          ` ${r.username}${r.full_name ? ` — ${r.full_name}` : ""}`,
          neighbour && r.district ? el("span", {class: "hint"}, ` · ${r.district}`) : "",
          onThis.has(r.id) ? el("span", {class: "hint"}, ` (${t("inc.on_this")})`)
            : r.busy ? el("span", {class: "hint"}, ` (${t("inc.busy")})`) : "");
        const nodes = data.items.map((r) => crew(r, false));
        if (data.reason) {
          // Why nobody can be sent, and whom to ask instead: the neighbouring districts' crews.
          const where = data.district ? data.district.name : "";
          nodes.push(el("p", {class: "no-crews", "data-testid": "no-crews", role: "status"},
            t(`ops2.crews.${data.reason}`, {district: where})));
          if (data.neighbours && data.neighbours.length) {
            nodes.push(el("p", {class: "hint"}, t("ops2.crews.neighbours")), ...data.neighbours.map((r) => crew(r, true)));
          } else nodes.push(el("p", {class: "hint"}, t("ops2.crews.no_neighbours")));
        }
        box.replaceChildren(...nodes);
      } catch (err) { showError(box, err); }
    })();
    await responderLoad;
    responderLoad = null;
  }

  const action = (formId, run) => {
    const form = document.getElementById(formId);
    form?.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = form.querySelector("[role=alert]");
      error.textContent = "";
      try { show(await run(form)); form.reset(); }
      catch (err) { showError(error, err); }
    });
    return form;
  };
  action("note-form", (f) => api(`/api/v1/incidents/${id}/notes`, {method: "POST", body: {text: f.text.value}}));
  action("close-form", (f) => api(`/api/v1/incidents/${id}/close`, {method: "POST", body: {resolution: f.resolution.value}}));
  action("dispatch-form", (f) => {
    const ids = [...f.querySelectorAll("input[name=responder]:checked")].map((x) => Number(x.value));
    if (!ids.length) throw new Error(t("inc.choose_responder"));
    return api(`/api/v1/incidents/${id}/dispatches`, {method: "POST", body: {responder_ids: ids, note: f.note.value}});
  });
  const linkForm = action("link-form", (f) => api(`/api/v1/incidents/${id}/cameras`, {method: "POST", body: {
    camera_id: Number(f.camera_id.value), start_at: isoOf(f.start.value), end_at: isoOf(f.end.value)}}));
  if (linkForm) {
    document.getElementById("link-box").addEventListener("toggle", async () => {
      if (linkForm.camera_id.options.length) return;
      const cams = await allPages("/api/v1/cameras");
      linkForm.camera_id.replaceChildren(...cams.filter((c) => c.rights.includes("view_archive"))
        .map((c) => el("option", {value: c.id}, c.name)));
      const now = new Date();
      linkForm.start.value = localInput(new Date(now.getTime() - 10 * 60000));
      linkForm.end.value = localInput(now);
    });
  }

  fetchIncident();
  if (operator) {
    let first = true;
    new OpsFeed({
      onState: feedBadge(document.getElementById("feed-state")),
      onConnect: () => { if (!first) fetchIncident(); first = false; },
      onMessage: (msg) => { if (msg.type === "incident" && msg.incident && msg.incident.id === id) show(msg.incident); },
    }).start();
  }
}
