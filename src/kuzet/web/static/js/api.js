// Small helpers shared by every page: API calls with the session cookie, translated texts, time formatting.
export const t = (key) => (window.KUZET.texts && window.KUZET.texts[key]) || key;

export async function api(path, {method = "GET", body, raw = false} = {}) {
  const init = {method, headers: {"X-Requested-With": "kuzet"}, credentials: "same-origin"};
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
    const err = new Error((data && data.error && data.error.message) || response.statusText);
    err.status = response.status;
    throw err;
  }
  return data;
}

export async function allPages(path) {
  const sep = path.includes("?") ? "&" : "?";
  const first = await api(`${path}${sep}limit=1000`);
  return first.items;
}

export function fmtTime(date) {
  return date.toLocaleString(window.KUZET.lang === "en" ? "en-GB" : window.KUZET.lang === "kk" ? "kk-KZ" : "ru-RU");
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}
