// Date and time fields in the page's language and time zone. A browser's own <input type=date|datetime-local|time>
// follows the browser's locale («12/01/2026, 02:05 PM» on an English system beside a Russian page), so every such
// input becomes a text field that shows and accepts the page language's form («01.12.2026 14:05:00»; «01/12/2026» in
// English), with that form as its placeholder. Its `value` stays what the native input held ("2026-12-01",
// "2026-12-01T14:05:00", "14:05"), a wall-clock value in the page's time zone (static/js/zone.js), so the pages'
// code, FormData and the tests read and write it unchanged; ISO typed in is accepted too.
import {t} from "./api.js";
import {zoneLabel} from "./zone.js";

const KINDS = {"date": "date", "datetime-local": "datetime", "time": "time"};
const native = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value");
const pad = (n) => String(n).padStart(2, "0");
const separator = () => (window.KUZET.lang === "en" ? "/" : ".");

function dayOf(y, m, d) {
  const at = new Date(Date.UTC(y, m - 1, d));
  return y >= 1 && at.getUTCFullYear() === y && at.getUTCMonth() === m - 1 && at.getUTCDate() === d
    ? `${String(y).padStart(4, "0")}-${pad(m)}-${pad(d)}` : null;
}

function timeOf(h, mi, s) {
  if (h > 23 || mi > 59 || (s !== undefined && s > 59)) return null;
  return s === undefined ? `${pad(h)}:${pad(mi)}` : `${pad(h)}:${pad(mi)}:${pad(s)}`;
}

/**
 * What the user typed as the native input's value: "" when empty, null when it is not a date/time of `kind`
 * ("date", "datetime", "time"). Days as the language writes them (31.12.2026, 31/12/2026) or ISO (2026-12-31).
 */
export function parseWhen(text, kind, seconds = false) {
  const s = String(text ?? "").trim();
  if (!s) return "";
  const clock = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/;
  if (kind === "time") {
    const m = clock.exec(s);
    return m ? timeOf(+m[1], +m[2], m[3] === undefined ? undefined : +m[3]) : null;
  }
  const m = /^(?:(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})[./-](\d{1,2})[./-](\d{4}))(?:(?:[T ]|,\s*)\s*(.+))?$/.exec(s);
  if (!m) return null;
  const day = m[1] ? dayOf(+m[1], +m[2], +m[3]) : dayOf(+m[6], +m[5], +m[4]);
  if (!day) return null;
  if (kind === "date") return m[7] ? null : day;
  const c = clock.exec(m[7] || "0:00");
  const time = c && timeOf(+c[1], +c[2], c[3] === undefined ? (seconds ? 0 : undefined) : +c[3]);
  return time ? `${day}T${time}` : null;
}

/** A native input's value as the page's language writes it (31.12.2026 14:05:00). */
export function formatWhen(value, kind) {
  if (!value) return "";
  if (kind === "time") return value;
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(.*))?$/.exec(value);
  if (!m) return value;
  const sep = separator();
  const day = `${m[3]}${sep}${m[2]}${sep}${m[1]}`;
  return kind === "date" || !m[4] ? day : `${day} ${m[4]}`;
}

function check(input) {
  const {when, seconds} = input.dataset;
  const ok = parseWhen(native.get.call(input), when, seconds === "1") !== null;
  input.setCustomValidity(ok ? "" : t(`when.invalid.${when}`));
  return ok;
}

/** Turn one native date/time input into the page's own field (once). */
export function enhance(input) {
  const kind = KINDS[input.getAttribute("type")];
  if (!kind || input.dataset.when) return;
  const seconds = kind === "datetime" && input.getAttribute("step") === "1";
  const initial = native.get.call(input);
  input.type = "text";
  input.dataset.when = kind;
  if (seconds) input.dataset.seconds = "1";
  input.autocomplete = "off";
  input.spellcheck = false;
  input.placeholder = t(seconds ? "when.datetime_seconds" : `when.${kind}`);
  if (kind === "datetime") input.title = zoneLabel();
  input.classList.add("when");
  Object.defineProperty(input, "value", {
    configurable: true,
    get() {
      const raw = native.get.call(this);
      const parsed = parseWhen(raw, kind, seconds);
      return parsed === null ? raw : parsed;
    },
    set(v) {
      const parsed = parseWhen(v, kind, seconds);
      native.set.call(this, parsed === null ? String(v ?? "") : formatWhen(parsed, kind));
      check(this);
    },
  });
  input.defaultValue = formatWhen(parseWhen(input.defaultValue, kind, seconds) || "", kind);
  input.value = initial;
  input.addEventListener("input", () => check(input));
  input.addEventListener("change", () => { if (check(input)) input.value = input.value; });
  const form = input.form;
  if (form && !form.dataset.whenFields) {  // FormData(form) reads the field's text: give it the value instead
    form.dataset.whenFields = "1";
    form.addEventListener("formdata", (event) => {
      for (const field of form.querySelectorAll("input[data-when][name]")) event.formData.set(field.name, field.value);
    });
  }
}

/** Every date/time input under `root`, and those added to the page later. */
export function enhanceAll(root = document) {
  for (const input of root.querySelectorAll('input[type="date"], input[type="datetime-local"], input[type="time"]')) {
    enhance(input);
  }
}

enhanceAll();
new MutationObserver((changes) => {
  for (const change of changes) {
    for (const node of change.addedNodes) {
      if (node.nodeType !== 1) continue;
      if (node.matches("input")) enhance(node);
      else enhanceAll(node);
    }
  }
}).observe(document.documentElement, {childList: true, subtree: true});
