import {api} from "./api.js";

const select = document.getElementById("language");
select?.addEventListener("change", async () => {
  const lang = select.value;
  document.cookie = `kuzet_lang=${lang}; path=/; max-age=31536000; samesite=lax`;
  if (window.KUZET.user) await api(`/api/v1/users/${window.KUZET.user.id}`, {method: "PATCH", body: {language: lang}});
  location.reload();
});

document.getElementById("logout")?.addEventListener("click", async () => {
  await api("/api/v1/auth/logout", {method: "POST"});
  location.href = "/login";
});
