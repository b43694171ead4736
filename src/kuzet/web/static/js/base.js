import {api} from "./api.js";
import "./when.js";  // date and time fields in the page's language and time zone

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

// Phones: list tables turn into cards (kuzet.css); each cell says which column it is from. Cells a page already
// labelled keep their label; rows drawn later are labelled as they come.
function labelCells() {
  for (const table of document.querySelectorAll("main table.list")) {
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    if (!heads.length) continue;
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.children].forEach((cell, i) => {
        if (!cell.hasAttribute("data-label")) cell.setAttribute("data-label", heads[i] || "");
      });
    }
  }
}
let labelling = false;
const main = document.querySelector("main");
if (main) {
  labelCells();
  new MutationObserver(() => {
    if (labelling) return;
    labelling = true;
    requestAnimationFrame(() => { labelling = false; labelCells(); });
  }).observe(main, {childList: true, subtree: true});
}
