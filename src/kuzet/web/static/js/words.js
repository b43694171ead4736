// Numbers and dates of the analytics and safe-yard pages in the page's language. Intl does it, except where the
// browser's ICU data lacks the language: Debian's Chromium claims Kazakh but formats it by the root locale
// («1,234.5», «2026 M12 1»). Kazakh writes numbers as Russian does («1 234,5», «12,5 %»), so numbers then use ru-RU,
// and dates are composed from the catalogue's month names by CLDR's Kazakh pattern «2024 ж. 1 наурыз».
import {fmtNumber, fmtTime, t} from "./api.js";

const lang = window.KUZET.lang || "ru";
const ICU_MISSING = lang === "kk" && new Intl.NumberFormat("kk-KZ").format(1.5) !== "1,5";

/** A number (Intl.NumberFormat options) in the page's language. */
export function number(x, options = {}) {
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  return ICU_MISSING ? new Intl.NumberFormat("ru-RU", options).format(x) : fmtNumber(x, options);
}

/** A number with at most `digits` decimals. */
export const num = (x, digits = 1) => number(x, {maximumFractionDigits: digits});

/** A percentage given in percent (12.5 → «12,5 %» / «12.5%»), signed when asked. */
export const pct = (x, signed = false) => (x === null || x === undefined ? "—"
  : number(x / 100, {style: "percent", maximumFractionDigits: 1, signDisplay: signed ? "exceptZero" : "auto"}));

/** A calendar day (ISO date, or the date part of a moment) as the language writes it: «1 марта 2024 г.». */
export function day(iso) {
  if (!iso) return "—";
  const text = String(iso).slice(0, 10);
  if (!ICU_MISSING) return fmtTime(`${text}T12:00:00Z`, {dateStyle: "long", timeZone: "UTC"});
  const [year, month, dayOfMonth] = text.split("-").map(Number);
  return t("cr.date_long", {year, day: dayOfMonth, month: t(`cr.month.${month}`)});
}

/** A moment (ISO date-time) in the installation's time zone: its day as above and the time «18:03». */
export function moment(iso) {
  if (!ICU_MISSING) return fmtTime(iso, {dateStyle: "long", timeStyle: "short"});
  const zone = window.KUZET.timezone || undefined;
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-CA", {timeZone: zone, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23"}).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return `${day(`${parts.year}-${parts.month}-${parts.day}`)}, ${parts.hour}:${parts.minute}`;
}

const PLURAL_LOCALES = {ru: "ru-RU", kk: "kk-KZ", en: "en-GB"};

/** A counted noun («883 преступления», «4 адам») like api.js's tn(), with the count written by number() above. */
export function count(key, n, vars = {}) {
  const forms = (window.KUZET.texts || {})[key];
  if (!forms) return key;
  const text = typeof forms === "string" ? forms
    : forms[new Intl.PluralRules(PLURAL_LOCALES[lang] || "ru-RU").select(n)] || forms.other || forms.many
      || Object.values(forms)[0];
  return text.replace(/\{(\w+)\}/g, (m, name) => (name === "n" ? number(n) : name in vars ? String(vars[name]) : m));
}
