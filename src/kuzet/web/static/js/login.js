import {sameOriginPath, t} from "./api.js";

const form = document.getElementById("login-form");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = Object.fromEntries(new FormData(form));
  const response = await fetch("/api/v1/auth/login", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(data),
  });
  if (response.ok) {
    location.href = sameOriginPath(form.dataset.next || "/");  // never off this site (an open redirect)
    return;
  }
  const box = document.getElementById("login-error");
  box.textContent = t(response.status === 429 ? "login.throttled" : "login.failed");
  box.hidden = false;
});
form.querySelector("button[type=submit]").disabled = false;  // only now: a submit before this would be the browser's own
