// The resident portal, phone first: my subscriptions and payments, my cameras live with to whom each is routed,
// a clip to download or share within my plan, and who viewed my cameras (my own views hidden unless asked), by page.
import {api, el, fmtNumber, fmtTime, label, t, tn} from "./api.js";
import {LivePlayer} from "./live.js";

const money = (tiyn) => fmtNumber(tiyn / 100, {style: "currency", currency: "KZT"});
const day = (value) => fmtTime(value, {dateStyle: "medium"});
const fact = (key, value) => el("div", {}, el("span", {class: "k"}, t(key)), el("span", {}, value));

function subscriptionCard(s) {
  const history = el("ul", {class: "portal-list"}, ...s.history.map((c) => el("li", {},
    el("span", {class: `state state-${c.to_state}`}, label("cloud_state", c.to_state)), " ",
    label("cloud_reason", c.reason), el("div", {class: "meta"}, fmtTime(c.at)))));
  const invoices = el("ul", {class: "portal-list"}, ...s.invoices.map((i) => el("li", {},
    `${i.period}: ${money(i.amount_tiyn)}`, el("div", {class: "meta"},
      t("portal.invoice_days", {days: i.days_active, of: i.days_in_period, plan: i.plan, due: day(i.due_on)})))));
  const payments = el("ul", {class: "portal-list"}, ...s.payments.map((p) => el("li", {},
    `${day(p.paid_on)}: ${money(p.amount_tiyn)}`, el("div", {class: "meta"}, p.reference))));
  const records = el("ul", {class: "portal-list"}, ...s.audit.map((r) => el("li", {},
    t(`action.${r.action}`), el("div", {class: "meta"}, `#${r.seq} · ${fmtTime(r.at)} · ${r.actor_name || ""}`))));
  return el("article", {class: "sub-card", "data-testid": "subscription", "data-state": s.state},
    el("h2", {}, `${s.address}, ${t("portal.flat")} ${s.flat}`),
    el("span", {class: `state state-${s.state}`}, label("cloud_state", s.state)),
    s.state === "suspended" ? el("p", {class: "error"}, t(`portal.suspended_${s.state_reason === "unpaid" ? "unpaid" : "other"}`)) : "",
    el("div", {class: "facts"},
      fact("portal.account", s.account), fact("portal.contract", s.contract), fact("portal.entrance", s.entrance),
      fact("portal.plan", `${s.plan.name} · ${money(s.plan.price_tiyn)}`),
      fact("portal.archive", tn("portal.days", s.plan.archive_days)),
      fact("portal.downloads", t("portal.downloads_left", {left: s.downloads_left, of: s.plan.clip_downloads_per_month})),
      fact("portal.balance", money(s.balance_tiyn)),
      fact("portal.since", fmtTime(s.state_since)),
      s.trial_until ? fact("portal.trial_until", day(s.trial_until)) : ""),
    el("details", {class: "more"}, el("summary", {}, t("portal.history")), history, el("h3", {}, t("portal.audit")), records),
    el("details", {class: "more"}, el("summary", {}, t("portal.bills")), el("h3", {}, t("portal.invoices")), invoices,
      el("h3", {}, t("portal.payments")), payments));
}

function cameraCard(c) {
  const video = el("video", {muted: "", playsinline: "", autoplay: ""});
  video.muted = true;
  const routes = c.routed_to.length
    ? c.routed_to.map((r) => el("li", {"data-testid": "route"}, t("portal.routed", {holder: r.holder, number: r.number}),
      el("div", {class: "meta"}, `${r.scope.map((s) => label("cloud_right", s)).join(", ")} · ${r.legal_basis}`,
        r.ends_on ? ` · ${t("portal.until", {date: day(r.ends_on)})}` : "")))
    : [el("li", {}, t("portal.not_routed"))];
  const card = el("div", {class: "portal-camera", "data-camera": c.id}, video, el("div", {class: "body"},
    el("h3", {}, el("a", {href: `/cameras/${c.id}`}, c.name)),
    c.archive_from ? el("div", {class: "meta hint"}, t("portal.archive_from", {date: fmtTime(c.archive_from)})) : "",
    el("ul", {class: "routes"}, ...routes)));
  if (c.rights.includes("view_live")) new LivePlayer(video, c.id, {stream: "sub"}).start();
  return card;
}

const subs = await api("/api/v1/my/subscriptions");
document.getElementById("my-subscriptions").replaceChildren(...subs.map(subscriptionCard));
const cameras = await api("/api/v1/my/cameras");
const box = document.getElementById("my-cameras");
box.replaceChildren(...(cameras.length ? cameras.map(cameraCard) : [el("p", {class: "hint"}, t("portal.no_cameras"))]));

// --- a clip to keep or to share, within the plan --------------------------------------------------------------------
const mine = cameras.filter((c) => c.account);
if (mine.length) {
  document.getElementById("clip-box").hidden = false;
  const select = document.getElementById("clip-camera");
  select.replaceChildren(...mine.map((c) => el("option", {value: c.id}, c.name)));
  const start = document.getElementById("clip-start");
  const local = new Date(Date.now() - 15 * 60000 - new Date().getTimezoneOffset() * 60000);
  start.value = local.toISOString().slice(0, 19);
  const message = document.getElementById("clip-message");
  const allowance = document.getElementById("clip-allowance");
  const showAllowance = (s) => { allowance.textContent = s.map((x) => `${x.account}: ${t("portal.downloads_left", {left: x.downloads_left, of: x.plan.clip_downloads_per_month})}`).join("; "); };
  showAllowance(subs);
  const windowOf = () => {
    const form = new FormData(document.getElementById("clip-form"));
    const from = new Date(form.get("start"));
    return {camera: Number(form.get("camera")), start: from.toISOString(),
      end: new Date(from.getTime() + Number(form.get("minutes")) * 60000).toISOString()};
  };
  const refresh = async () => { showAllowance(await api("/api/v1/my/subscriptions")); await loadShares(); };
  document.getElementById("clip-download").addEventListener("click", async () => {
    const w = windowOf();
    const response = await api(`/api/v1/my/cameras/${w.camera}/download.mp4?start=${encodeURIComponent(w.start)}&end=${encodeURIComponent(w.end)}`, {raw: true});
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      message.textContent = t(response.status === 409 ? "portal.allowance_used" : "portal.clip_failed", {message: body.error ? body.error.message : ""});
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    el("a", {href: url, download: `camera-${w.camera}.mp4`}).click();
    message.textContent = t("portal.downloaded");
    await refresh();
  });
  document.getElementById("clip-share").addEventListener("click", async () => {
    const w = windowOf();
    try {
      const made = await api("/api/v1/my/shares", {method: "POST", body: {camera_id: w.camera, start: w.start, end: w.end, hours: 24}});
      message.replaceChildren(t("portal.shared"), el("div", {class: "share-url", "data-testid": "share-url"}, made.url));
      navigator.clipboard?.writeText(made.url).catch(() => {});
    } catch (err) {
      message.textContent = t(err.status === 409 ? "portal.allowance_used" : "portal.clip_failed", {message: err.message});
    }
    await refresh();
  });
  await loadShares();
}

async function loadShares() {
  const list = await api("/api/v1/my/shares");
  const names = Object.fromEntries(cameras.map((c) => [c.id, c.name]));
  document.getElementById("my-shares").replaceChildren(...list.map((s) => {
    const live = !s.revoked_at && Date.parse(s.expires_at) > Date.now();
    return el("li", {}, `${names[s.camera_id] || s.camera_id}: ${fmtTime(s.start)}`,
      el("div", {class: "meta"}, live ? t("portal.share_until", {date: fmtTime(s.expires_at), n: s.opened})
        : t("portal.share_closed", {n: s.opened})),
      live ? el("button", {type: "button", onclick: async () => {
        if (!confirm(t("portal.revoke_confirm"))) return;
        await api(`/api/v1/my/shares/${s.id}`, {method: "DELETE"});
        await loadShares();
      }}, t("portal.revoke")) : "");
  }));
}

// --- who viewed my cameras ------------------------------------------------------------------------------------------
const PAGE = 25;
let offset = 0;
const own = document.getElementById("log-own");

async function loadLog() {
  const page = await api(`/api/v1/my/access-log?limit=${PAGE}&offset=${offset}&include_own=${own.checked}`);
  document.getElementById("access-log").replaceChildren(...(page.items.length ? page.items.map((r) => el("li", {"data-own": String(r.own)},
    el("strong", {class: "actor"}, r.own ? t("portal.me") : r.actor_name || ""), " · ", t(`action.${r.action}`), " · ", r.camera,
    el("div", {class: "meta"}, `${fmtTime(r.at)}${r.legal_basis ? " · " + r.legal_basis : ""}`)))
    : [el("li", {class: "hint"}, t("portal.nobody"))]));
  const pages = Math.max(1, Math.ceil(page.total / PAGE));
  document.getElementById("log-page").textContent = t("portal.page", {n: Math.floor(offset / PAGE) + 1, of: pages});
  document.getElementById("log-prev").disabled = offset === 0;
  document.getElementById("log-next").disabled = offset + PAGE >= page.total;
}
own.addEventListener("change", () => { offset = 0; loadLog(); });
document.getElementById("log-prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadLog(); });
document.getElementById("log-next").addEventListener("click", () => { offset += PAGE; loadLog(); });
await loadLog();
