// Onboarding (the telecom's admins): the installation list (CSV/XLSX, all rows or none, every bad row shown) and ONVIF
// discovery — found cameras are added from their own profiles, so nobody types an RTSP URL.
import {api, el, label, t, tn} from "./api.js";

const listResult = document.getElementById("list-result");
const devices = document.getElementById("devices");
window.KUZET.onboarding = {imports: 0};

function errorLines(error) {
  const rows = (error && error.rows) || [];
  return el("div", {},
    el("p", {class: "error"}, rows.length ? tn("onb.list.bad_rows", rows.length) : `${t("common.error")}: ${error ? error.message : ""}`),
    rows.length ? el("ul", {class: "import-errors", "data-testid": "import-errors"},
      ...rows.map((r) => el("li", {"data-line": r.line}, t("onb.list.line", {line: r.line, message: r.message})))) : "");
}

document.getElementById("list-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = new FormData();
  body.append("file", form.file.files[0]);
  listResult.replaceChildren(el("p", {class: "hint"}, t("common.loading")));
  const response = await fetch("/api/v1/onboarding/installations", {method: "POST", body,
    headers: {"X-Requested-With": "kuzet"}, credentials: "same-origin"});
  const data = await response.json().catch(() => ({}));
  window.KUZET.onboarding.imports += 1;
  if (!response.ok) {
    listResult.replaceChildren(errorLines(data.error));
    return;
  }
  form.reset();
  listResult.replaceChildren(
    el("p", {class: "ok"}, tn("onb.list.imported", data.imported), " · ", tn("onb.list.places_created", data.places_created),
      " · ", tn("onb.list.places_reused", data.places_reused)),
    el("table", {class: "table"},
      el("thead", {}, el("tr", {}, el("th", {}, t("onb.list.line_h")), el("th", {}, t("onb.camera")),
        el("th", {}, t("onb.id")))),
      el("tbody", {}, ...data.cameras.map((c) => el("tr", {},
        el("td", {}, String(c.line)), el("td", {}, el("a", {href: `/cameras/${c.camera_id}`}, c.name)),
        el("td", {}, String(c.camera_id)))))));
});

function addForm(device) {
  const status = el("p", {role: "status"});
  const form = el("form", {class: "onvif-add", "data-testid": "onvif-add"},
    el("label", {}, t("onb.onvif.place"), " ", el("input", {name: "place_id", type: "number", min: "1", required: ""})),
    el("label", {}, t("onb.onvif.name"), " ", el("input", {name: "name", maxlength: "200"})),
    el("label", {}, t("onb.onvif.kind"), " ", el("select", {name: "kind"},
      ...["entrance", "yard", "street", "school", "road", "gate", "public_place", "shop", "other"].map((k) =>
        el("option", {value: k}, label("camera_kind", k))))),
    el("label", {}, t("onb.onvif.user"), " ", el("input", {name: "username", autocomplete: "off", maxlength: "100"})),
    el("label", {}, t("onb.onvif.password"), " ", el("input", {name: "password", type: "password", autocomplete: "new-password", maxlength: "200"})),
    el("button", {type: "submit"}, t("onb.onvif.add")), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = event.target;
    status.replaceChildren(t("common.loading"));
    try {
      const body = {xaddr: device.xaddrs[0], place_id: Number(f.place_id.value), kind: f.kind.value,
        username: f.username.value || null, password: f.password.value || null};
      if (f.name.value) body.name = f.name.value;
      const out = await api("/api/v1/onboarding/onvif/cameras", {method: "POST", body});
      status.replaceChildren(el("span", {class: "ok"}, t("onb.onvif.added"), " "),
        el("a", {href: `/cameras/${out.camera_id}`}, out.name), " · ",
        tn("onb.onvif.profiles", out.device.profiles.length));
    } catch (err) {
      status.replaceChildren(el("span", {class: "error"}, `${t("common.error")}: ${err.message}`));
    }
  });
  return form;
}

document.getElementById("discover-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = event.target;
  const addresses = f.addresses.value.split(/[\s,;]+/).filter(Boolean);
  devices.replaceChildren(el("p", {class: "hint"}, t("onb.onvif.searching")));
  try {
    const out = await api("/api/v1/onboarding/onvif/discover", {method: "POST",
      body: {addresses, port: Number(f.port.value) || 3702, multicast: f.multicast.checked, timeout: 3}});
    if (!out.devices.length) {
      devices.replaceChildren(el("p", {class: "hint"}, t("onb.onvif.none")));
      return;
    }
    devices.replaceChildren(el("p", {}, tn("onb.onvif.found", out.devices.length)),
      ...out.devices.map((d) => {
        const name = (d.scopes.find((s) => s.includes("/name/")) || "").split("/").pop();
        return el("article", {class: "card", "data-testid": "onvif-device"},
          el("h3", {}, name || d.address), el("p", {class: "hint"}, d.xaddrs.join(" ")), addForm(d));
      }));
  } catch (err) {
    devices.replaceChildren(el("p", {class: "error"}, `${t("common.error")}: ${err.message}`));
  }
});
