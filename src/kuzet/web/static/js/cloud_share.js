// A shared clip: plays /api/v1/shared/<token>.mp4 (each opening is on the camera's record).
import "./api.js";

const root = document.getElementById("share");
const video = document.getElementById("share-video");
video.src = `/api/v1/shared/${encodeURIComponent(root.dataset.token)}.mp4`;
video.addEventListener("error", () => { document.getElementById("share-error").hidden = false; video.hidden = true; });
