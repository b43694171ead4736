// Signing up with the activation code from the entrance's notice: the account is made, then signed in, then /my.
import {t} from "./api.js";

const form = document.getElementById("activate-form");
const box = document.getElementById("activate-error");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  box.hidden = true;
  const data = Object.fromEntries(new FormData(form));
  data.language = window.KUZET.lang || "ru";
  const response = await fetch("/api/v1/activation", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(data)});
  if (response.ok) {
    const login = await fetch("/api/v1/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({username: data.username, password: data.password})});
    location.href = login.ok ? "/my" : "/login";
    return;
  }
  const body = await response.json().catch(() => ({}));
  const code = body.error && body.error.code;
  box.textContent = response.status === 429 ? t("activate.throttled")
    : code === "invalid_code" ? t("activate.invalid")
    : t("activate.failed", {message: (body.error && body.error.message) || response.statusText});
  box.hidden = false;
});
