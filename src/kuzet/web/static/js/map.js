// The camera map: the configured tile server when there is one ([map] tiles), otherwise streets and places drawn from
// the database in the console's colours, so it works on closed networks. Cameras are clustered where they crowd
// (Leaflet.markercluster); a camera's popup shows its live picture (the snapshot endpoint, refreshed while open).
import {api, el, fmtNumber, fmtTime, label, t, tn} from "./api.js";

// Leaflet shows strings as HTML: the attribution from the server is escaped, popups and tooltips get DOM nodes.
const asText = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const REFRESH_MS = 5000;

const box = document.getElementById("map");
const source = document.getElementById("map-source");
const data = await api("/api/v1/map");
window.KUZET.mapData = {tiles: data.tiles || null, features: data.features.length};
if (box.dataset.leaflet !== "true" || !window.L) {
  box.textContent = `${t("common.error")}: ${t("map2.no_leaflet")}`;
} else {
  const L = window.L;
  const map = L.map(box, {preferCanvas: true, zoomControl: true, maxZoom: data.max_zoom || 19, minZoom: 3});
  const offline = !data.tiles;
  if (!offline) {
    L.tileLayer(data.tiles, {maxZoom: data.max_zoom || 19, attribution: asText(data.attribution || "")}).addTo(map);
    source.textContent = t("map2.online");
  } else {
    box.classList.add("offline-map");
    source.textContent = t("map2.offline");
  }
  const colours = offline ? {street: "#5d6d7e", place: "#7f8c8d", view: "#3498db"}
    : {street: "#34495e", place: "#7f8c8d", view: "#2980b9"};
  const cameraFeatures = data.features.filter((f) => f.properties.layer === "camera");
  const clusterFeatures = data.features.filter((f) => f.properties.layer === "cluster");
  const other = {type: "FeatureCollection",
    features: data.features.filter((f) => !["camera", "cluster"].includes(f.properties.layer))};
  const background = L.geoJSON(other, {
    style: (f) => f.properties.layer === "street" ? {color: colours.street, weight: offline ? 5 : 4, opacity: .9}
      : f.properties.layer === "view" ? {color: colours.view, weight: 1, fillOpacity: .12, opacity: .5} : {},
    pointToLayer: (f, latlng) => L.circleMarker(latlng, {radius: 4, color: colours.place, weight: 1, fillOpacity: .6}),
    onEachFeature: (f, l) => {
      const p = f.properties;
      if (p.layer === "street" && p.name) l.bindTooltip(el("span", {}, p.name), {sticky: true});
      else if (p.layer === "place" && p.name) l.bindTooltip(el("span", {}, p.name, p.kind ? ` · ${label("place_kind", p.kind)}` : ""));
    },
  }).addTo(map);

  const clustered = Boolean(L.markerClusterGroup);
  const markers = [];
  const group = clustered ? L.markerClusterGroup({showCoverageOnHover: false, maxClusterRadius: 45, spiderfyOnMaxZoom: true})
    : L.layerGroup();
  for (const f of cameraFeatures) {
    const p = f.properties;
    const [lon, lat] = f.geometry.coordinates;
    const icon = L.divIcon({className: `cam-marker state-${p.state}`, iconSize: [16, 16], html: ""});
    const marker = L.marker([lat, lon], {icon, title: p.name, keyboard: true, riseOnHover: true});
    marker.bindPopup(popup(p), {minWidth: 240, maxWidth: 280});
    marker.on("popupclose", () => clearInterval(marker.refresh));
    marker.on("popupopen", () => {
      const img = marker.getPopup().getElement()?.querySelector("img[data-live]");
      if (!img) return;
      const load = () => { img.src = `/api/v1/cameras/${p.id}/snapshot.jpg?t=${Date.now()}`; };
      load();
      clearInterval(marker.refresh);
      marker.refresh = setInterval(load, REFRESH_MS);
    });
    group.addLayer(marker);
    markers.push(marker);
  }
  group.addTo(map);

  // A city too large to draw camera by camera comes as counts on a grid (the server's clusters, /api/v1/map with bbox
  // and zoom): drawn as numbered circles; a click zooms in; every move asks again for what the screen shows.
  const counts = L.layerGroup().addTo(map);
  const drawCounts = (features) => {
    counts.clearLayers();
    for (const f of features) {
      const [lon, lat] = f.geometry.coordinates;
      const n = f.properties.count;
      const size = n < 100 ? 30 : n < 1000 ? 38 : 46;
      const icon = L.divIcon({className: "cam-count", iconSize: [size, size],
        html: `<span>${asText(fmtNumber(n))}</span>`});
      const marker = L.marker([lat, lon], {icon, title: tn("map2.cameras_n", n), keyboard: true});
      marker.on("click", () => map.setView([lat, lon], Math.min(map.getZoom() + 2, map.getMaxZoom())));
      counts.addLayer(marker);
    }
  };
  drawCounts(clusterFeatures);
  if (clusterFeatures.length) {
    let asked = 0;
    map.on("moveend", async () => {
      const ask = ++asked;
      const b = map.getBounds();
      const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(",");
      const view = await api(`/api/v1/map?bbox=${bbox}&zoom=${map.getZoom()}`);
      if (ask !== asked) return;  // a later move already asked
      drawCounts(view.features.filter((f) => f.properties.layer === "cluster"));
      group.clearLayers();
      for (const f of view.features.filter((x) => x.properties.layer === "camera")) {
        const [lon, lat] = f.geometry.coordinates;
        const icon = L.divIcon({className: `cam-marker state-${f.properties.state}`, iconSize: [16, 16], html: ""});
        group.addLayer(L.marker([lat, lon], {icon, title: f.properties.name}).bindPopup(popup(f.properties),
          {minWidth: 240, maxWidth: 280}));
      }
    });
  }
  window.KUZET.mapCounts = clusterFeatures.length;

  const bounds = L.featureGroup([background, ...(clustered ? [] : [group])]).getBounds();
  for (const f of [...cameraFeatures, ...clusterFeatures]) bounds.extend([f.geometry.coordinates[1], f.geometry.coordinates[0]]);
  if (bounds.isValid()) map.fitBounds(bounds.pad(0.1)); else map.setView([48, 67], 5);
  window.KUZET.map = map;
  window.KUZET.mapFeatures = data.features.length;
  window.KUZET.mapCameras = cameraFeatures.length;
  window.KUZET.mapClustered = clustered;
  window.KUZET.mapGroup = group;
  window.KUZET.mapMarkers = markers;  // each with its popup's node: marker.getPopup().getContent()
  showCrews(L, map);
}

/** Patrol cars streaming live, at their latest GPS fix (only those the user may see): the position the car posts while
 * it streams, else the newest point of its offloaded tracks. Polled every 15 s; a car that moved is moved (its marker
 * and open popup stay), one that left the list is taken off. */
async function showCrews(L, map) {
  const layer = L.layerGroup().addTo(map);
  const shown = new Map();  // device id → marker
  const draw = async () => {
    let crews = [];
    try { crews = await api("/api/v1/bodycams/crews"); } catch { return; }
    const seen = new Set();
    for (const c of crews) {
      seen.add(c.device_id);
      const when = new Date(c.at);
      const note = el("div", {class: "map-popup", "data-testid": "crew-popup"}, el("strong", {}, t("bc.crew", {serial: c.serial})),
        el("br"), t("bc.crew.at", {time: fmtTime(when)}), el("br"),
        c.live ? el("a", {href: `/cameras/${c.camera_id}`}, t("bc.crew.live")) : "");
      const marker = shown.get(c.device_id);
      if (marker) {
        marker.setLatLng([c.lat, c.lon]);
        marker.setPopupContent(note);
      } else {
        const icon = L.divIcon({className: "crew-marker", iconSize: [18, 18], html: ""});
        const made = L.marker([c.lat, c.lon], {icon, title: t("bc.crew", {serial: c.serial}), zIndexOffset: 1000}).bindPopup(note);
        layer.addLayer(made);
        shown.set(c.device_id, made);
      }
    }
    for (const [id, marker] of shown) if (!seen.has(id)) { layer.removeLayer(marker); shown.delete(id); }
    window.KUZET.mapCrews = crews.map((c) => ({serial: c.serial, lat: c.lat, lon: c.lon, source: c.source}));
  };
  window.KUZET.mapCrewsRefresh = draw;
  await draw();
  setInterval(draw, 15000);
}

/** A camera's popup: its name (a link to its page), place, state, and its live picture. */
function popup(p) {
  const picture = el("img", {"data-live": "", alt: t("map2.live_picture", {name: p.name}), "data-testid": "popup-picture"});
  const note = el("span", {class: "thumb-wait"}, t("map2.loading_picture"));
  picture.hidden = true;
  picture.addEventListener("load", () => { picture.hidden = false; note.hidden = true; });
  picture.addEventListener("error", () => { picture.hidden = true; note.hidden = false; note.textContent = t("map2.no_picture"); });
  return el("div", {class: "map-popup", "data-testid": "map-popup"},
    el("a", {href: `/cameras/${p.id}`}, el("strong", {}, p.name)), el("br"),
    p.place ? el("span", {}, p.place) : "", p.place ? el("br") : "",
    el("span", {class: `state state-${p.state}`}, label("camera_state", p.state), p.kind ? ` · ${label("camera_kind", p.kind)}` : ""),
    picture, note);
}
