// The installation's evidence-signing key (GET /api/v1/exports/public-key): its fingerprint, in blocks of four hex
// characters to read aloud, where evidence is exported and on /admin, so that a recipient of a bundle can compare it
// with the fingerprint the bundle names. An installation that does not serve the key yet (404) shows nothing.
import {api, el, t} from "./api.js";

/** "ab12cd34…" → "ab12 cd34 …" */
export const groupFingerprint = (hex) => (String(hex).toLowerCase().match(/.{1,4}/g) || []).join(" ");

/** Fill box (hidden until then; its [data-key-body] child if it has one) with the key; null if there is none. */
export async function showSigningKey(box, {pem = false} = {}) {
  let key = null;
  try {
    const response = await api("/api/v1/exports/public-key", {raw: true});
    if (response.ok) key = await response.json();
  } catch (err) { return null; }
  if (!key || !/^[0-9a-fA-F]{64}$/.test(key.fingerprint || "")) return null;
  const body = box.querySelector("[data-key-body]") || box;
  body.replaceChildren(
    el("span", {}, `${t("evidence.key.fingerprint")} (${key.algorithm || "ed25519"}): `),
    el("code", {class: "fingerprint", "data-testid": "key-fingerprint"}, groupFingerprint(key.fingerprint)),
    el("br"),
    el("span", {class: "hint"}, ...explained()),
    ...(pem && key.public_key_pem
      ? [el("details", {}, el("summary", {}, t("evidence.key.pem")), el("pre", {class: "pem"}, key.public_key_pem))] : []));
  box.hidden = false;
  window.KUZET.signingKey = key.fingerprint.toLowerCase();
  return key;
}

/** The explanation with the command to type shown as code (the catalogue's text holds "{command}"). */
function explained() {
  const [before, after = ""] = t("evidence.key.explain").split("{command}");
  return [before, el("code", {}, "kuzet export verify"), after];
}
