// The user's settings: language and time zone, saved on the account (PATCH /api/v1/users/{id}); the page reloads in
// the new language and zone. The result is said beside the form that caused it.
import {api, t} from "./api.js";

const form = document.getElementById("settings-form");
const result = document.getElementById("settings-result");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = form.elements;
  try {
    await api(`/api/v1/users/${window.KUZET.user.id}`, {method: "PATCH",
      body: {language: f.language.value, timezone: f.timezone.value}});
    document.cookie = `kuzet_lang=${f.language.value}; path=/; max-age=31536000; samesite=lax`;
    result.className = "ok";
    result.textContent = t("settings.saved");
    location.reload();
  } catch (err) {
    result.className = "error";
    result.textContent = `${t("common.error")}: ${err.message}`;
  }
});
form.querySelector("button[type=submit]").disabled = false;  // only now: a submit before this would reload, unsaved
