// Map of cameras. With no tile server configured it draws streets and places from the database, so it works offline.
import {api, t} from "./api.js";

const box = document.getElementById("map");
const data = await api("/api/v1/map");
if (box.dataset.leaflet !== "true" || !window.L) {
  box.textContent = `${t("common.error")}: Leaflet (npm) is not installed — run make web-assets`;
} else {
  const L = window.L;
  const map = L.map(box, {preferCanvas: true});
  if (data.tiles) L.tileLayer(data.tiles, {maxZoom: 19, attribution: data.attribution || ""}).addTo(map);
  const layer = L.geoJSON(data, {
    style: (f) => f.properties.layer === "street" ? {color: "#7f8c8d", weight: 4} :
      f.properties.layer === "view" ? {color: "#2980b9", weight: 1, fillOpacity: 0.15} : {},
    pointToLayer: (f, latlng) => f.properties.layer === "camera"
      ? L.circleMarker(latlng, {radius: 7, color: "#fff", weight: 2, fillColor: f.properties.state === "recording" ? "#27ae60" : "#e67e22", fillOpacity: 1})
      : L.circleMarker(latlng, {radius: 4, color: "#95a5a6", fillOpacity: 0.6}),
    onEachFeature: (f, l) => {
      const p = f.properties;
      if (p.layer === "camera") l.bindPopup(`<a href="/cameras/${p.id}">${p.name}</a><br>${p.place || ""}`);
      else if (p.name) l.bindTooltip(p.name);
    },
  }).addTo(map);
  const bounds = layer.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds.pad(0.1)); else map.setView([48, 67], 5);
  window.KUZET.mapFeatures = data.features.length;
}
