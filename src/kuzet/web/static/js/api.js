// Small helpers shared by every page: the page's boot data, API calls with the session cookie, translated texts,
// time formatting, and `el()`, the one way pages build DOM nodes (user data always as text, never as HTML).

// The page's boot data ({lang, texts, user}) comes in <script type="application/json" id="kuzet-boot">: data, not
// code, so the Content-Security-Policy can forbid every inline script. Every module imports this one, so
// window.KUZET is set before any page code runs.
function bootData() {
  const node = document.getElementById("kuzet-boot");
  try {
    const data = node ? JSON.parse(node.textContent) : null;
    if (data && typeof data === "object") return data;
  } catch (err) { /* a broken boot block: run with the keys as texts */ }
  return {lang: document.documentElement.lang || "ru", texts: {}, user: null};
}
window.KUZET = bootData();

const LOCALES = {ru: "ru-RU", kk: "kk-KZ", en: "en-GB"};
const locale = () => LOCALES[window.KUZET.lang] || "ru-RU";
// Debian's Chromium claims Kazakh but formats it by the root locale («1,234.5», «2026 M12 1»). Kazakh writes numbers and
// numeric dates as Russian does («1 234,5», «01.12.2026»), so where the browser lacks it those use ru-RU; dates with
// month names stay with the language's own data (static/js/words.js composes them from the catalogue).
let kazakhMissing = null;
const numericLocale = () => {
  if (window.KUZET.lang !== "kk") return locale();
  if (kazakhMissing === null) kazakhMissing = new Intl.NumberFormat("kk-KZ").format(1.5) !== "1,5";
  return kazakhMissing ? "ru-RU" : locale();
};
const NAMED = new Set(["long", "medium", "full", "short", "narrow"]);
const namesMonths = (o) => NAMED.has(o.dateStyle) && o.dateStyle !== "short" || NAMED.has(o.month) || Boolean(o.weekday);
const fill = (text, vars) => text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));

/** A text in the page's language; `{name}` placeholders filled from `vars`. Unknown keys show as themselves. */
export function t(key, vars = {}) {
  let text = window.KUZET.texts && window.KUZET.texts[key];
  if (text && typeof text === "object") text = text.other || text.many || Object.values(text)[0];
  return fill(typeof text === "string" ? text : key, vars);
}

/** A counted noun: the plural form of `key` for `n` by the language's rules (Intl.PluralRules: ru one/few/many). */
export function tn(key, n, vars = {}) {
  const forms = window.KUZET.texts && window.KUZET.texts[key];
  if (!forms) return key;
  const text = typeof forms === "string" ? forms
    : forms[new Intl.PluralRules(locale()).select(n)] || forms.other || forms.many || Object.values(forms)[0];
  return fill(text, {...vars, n: fmtNumber(n)});
}

/** A value's name (camera kind, state, category …): `label.<group>.<value>`, or the value itself if unnamed. */
export function label(group, value) {
  const key = `label.${group}.${value}`;
  return window.KUZET.texts && key in window.KUZET.texts ? t(key) : String(value ?? "");
}

export function fmtNumber(n, options = {}) {
  return new Intl.NumberFormat(numericLocale(), options).format(n);
}

export async function api(path, {method = "GET", body, raw = false} = {}) {
  // Errors come back in the page's language (the API reads Accept-Language).
  const init = {method, headers: {"X-Requested-With": "kuzet", "Accept-Language": window.KUZET.lang || "ru"},
    credentials: "same-origin"};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (raw) return response;
  if (response.status === 401) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    throw new Error("unauthorized");
  }
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    // The message comes whole in the page's language; key and params name it (api_error.…, api_validation for a
    // request's shape with params.problems per field) for pages that react to a particular refusal.
    const error = (data && data.error) || {};
    const err = new Error(error.message || response.statusText);
    err.status = response.status;
    err.code = error.code;
    err.key = error.key;
    err.params = error.params || {};
    throw err;
  }
  return data;
}

export async function allPages(path) {
  const sep = path.includes("?") ? "&" : "?";
  const first = await api(`${path}${sep}limit=1000`);
  return first.items;
}

/** A moment as the user reads it: in the installation's (or the user's) time zone, the page's language. */
export function fmtTime(date, options = {dateStyle: "short", timeStyle: "medium"}) {
  return new Intl.DateTimeFormat(namesMonths(options) ? locale() : numericLocale(),
    {timeZone: window.KUZET.timezone || undefined, ...options})
    .format(date instanceof Date ? date : new Date(date));
}

/**
 * A path on this site to go to after signing in: "/x" stays; anything that could leave the site ("//evil",
 * "/\\evil", "https://evil", "javascript:…", control characters browsers strip) becomes "/".
 */
export function sameOriginPath(value) {
  if (typeof value !== "string" || !value.startsWith("/") || value.startsWith("//")) return "/";
  if (/[\\\u0000-\u001f\u007f]/.test(value)) return "/";
  try {
    const url = new URL(value, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
  } catch (err) { return "/"; }
}

const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "poster", "xlink:href"]);
const URL_SCHEMES = new Set(["http:", "https:", "blob:", "geo:"]);

/** The URL if a link or picture may point there (this site, http(s), blob:, geo:), else null: no javascript:. */
export function safeUrl(value) {
  try {
    return URL_SCHEMES.has(new URL(String(value), location.href).protocol) ? String(value) : null;
  } catch (err) { return null; }
}

/**
 * A DOM node: el("a", {href: "/cameras/1", class: "x"}, "text", otherNode). Children that are not nodes become text
 * nodes, so data is shown as the characters it holds; on… attributes take functions only; URL attributes refuse
 * other schemes (javascript:, data:); style takes an object of properties (the CSP forbids style attributes).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) { if (typeof v === "function") node.addEventListener(k.slice(2), v); }
    else if (k === "style") { if (typeof v === "object") Object.assign(node.style, v); }
    else if (URL_ATTRIBUTES.has(k)) { const url = safeUrl(v); if (url !== null) node.setAttribute(k, url); }
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}
