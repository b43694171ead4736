// Times as the page shows them: wall-clock values in the page's time zone (window.KUZET.timezone — the user's or the
// installation's, default Asia/Almaty), whatever the browser's own zone is. Date and datetime-local inputs hold such
// wall-clock values; these helpers turn them into instants and back, so a form, the clock and the timeline agree.
import "./api.js";

const zone = () => window.KUZET.timezone || undefined;
const pad = (n) => String(n).padStart(2, "0");
const FIELDS = {year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  second: "2-digit", hourCycle: "h23"};

/** {year, month, day, hour, minute, second} of an instant on the page's clock. */
export function wallParts(date) {
  const out = {};
  for (const p of new Intl.DateTimeFormat("en-GB", {timeZone: zone(), ...FIELDS}).formatToParts(date)) {
    if (p.type !== "literal") out[p.type] = Number(p.value);
  }
  if (out.hour === 24) out.hour = 0;
  return out;
}

/** Milliseconds the page's zone is ahead of UTC at an instant. */
function offsetAt(ms) {
  const p = wallParts(new Date(ms));
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
}

/** An instant as the value of a datetime-local input (seconds) in the page's zone. */
export function zonedInput(date) {
  const p = wallParts(date instanceof Date ? date : new Date(date));
  return `${p.year}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}`;
}

/** An instant as the value of a date input in the page's zone. */
export const zonedDate = (date) => zonedInput(date).slice(0, 10);

/** The value of a datetime-local ("YYYY-MM-DDTHH:MM[:SS]") or date input, read in the page's zone, as a Date. */
export function fromZoned(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(value || "");
  if (!m) return null;
  const naive = Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0), +(m[6] || 0));
  const first = naive - offsetAt(naive);
  return new Date(naive - offsetAt(first));  // again at the guess: right across a change of the zone's offset
}

/** The instant a date input's day ends (the next day's midnight in the page's zone), as ISO. */
export function dayAfter(value) {
  const start = fromZoned(value);
  if (!start) return "";
  const p = wallParts(new Date(start.getTime() + 36 * 3600 * 1000));  // some time on the next day
  return fromZoned(`${p.year}-${pad(p.month)}-${pad(p.day)}`).toISOString();
}

/** "Asia/Almaty, UTC+05:00": the zone the page's times are in, to show beside inputs. */
export function zoneLabel(date = new Date()) {
  const minutes = Math.round(offsetAt(date.getTime()) / 60000);
  const sign = minutes < 0 ? "−" : "+";
  const abs = Math.abs(minutes);
  return `${zone() || "UTC"}, UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
