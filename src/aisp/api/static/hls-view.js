// HLS playback of a stream card: the vendored, pinned hls.js (static/vendor/hls.min.js, loaded
// on first use, no CDN) plays /api/streams/{id}/hls/index.m3u8 in a <video>, sending the API key
// as a header through xhrSetup (never in a URL). Under the page's CSP: hls.js runs without its
// blob: worker; MSE media is a blob: URL (media-src). Falls back to the MJPEG view where HLS
// cannot play (no MSE, HLS off and not an admin, or a fatal playback error).

import { api, auth } from "./api.js";
import { el, toast } from "./ui.js";

let loading = null;

function loadHls() {
  if (window.Hls) return Promise.resolve(window.Hls);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = "/static/vendor/hls.min.js";
      script.onload = () => (window.Hls ? resolve(window.Hls) : reject(new Error("hls.js did not load")));
      script.onerror = () => {
        loading = null;
        reject(new Error("hls.js could not be loaded"));
      };
      document.head.append(script);
    });
  }
  return loading;
}

// The button and <video> a stream card gets (streams.js puts them in the card).
export function hlsParts(id) {
  const video = el("video", { class: "hls", muted: true, playsInline: true, hidden: true,
    "aria-label": `HLS view of ${id}` });
  video.muted = true;
  const button = el("button", { class: "btn btn-small hls-toggle", type: "button", text: "HLS",
    title: "Play this stream as HLS (H.264) instead of MJPEG" });
  return { video, button };
}

// Switch a card between MJPEG and HLS; `showMjpeg(card)` / `hideMjpeg(card)` come from streams.js.
export async function toggleHls(card, id, showMjpeg, hideMjpeg) {
  if (card._hls) {
    stopHls(card);
    showMjpeg(card);
    return;
  }
  const button = card.querySelector(".hls-toggle");
  button.disabled = true;
  try {
    const Hls = await loadHls();
    if (!Hls.isSupported()) throw new Error("this browser cannot play HLS through Media Source Extensions");
    const path = `/api/streams/${encodeURIComponent(id)}/hls`;
    const stream = await api(`/api/streams/${encodeURIComponent(id)}`);
    if (!(stream.output && stream.output.hls)) {
      if (!document.body.classList.contains("role-admin")) {
        throw new Error("HLS is off for this stream (an admin can turn it on)");
      }
      await api(`${path}/start`, { method: "POST" }); // an admin turns HLS on for this stream
    }
    play(card, Hls, `${path}/index.m3u8`, showMjpeg);
    hideMjpeg(card);
    button.classList.add("active");
    button.textContent = "MJPEG";
  } catch (err) {
    toast(`HLS for ${id}: ${err.message}; showing MJPEG`, "error");
    stopHls(card);
    showMjpeg(card);
  } finally {
    button.disabled = false;
  }
}

function play(card, Hls, url, showMjpeg) {
  const video = card.querySelector("video.hls");
  const key = auth.key;
  const hls = new Hls({
    enableWorker: false, // a worker would need a blob: script, which the CSP forbids
    lowLatencyMode: false,
    liveSyncDurationCount: 2,
    xhrSetup(xhr) {
      if (key) xhr.setRequestHeader("X-API-Key", key);
    },
  });
  card._hls = hls;
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal) return;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && !card._recovered) {
      card._recovered = true;
      hls.recoverMediaError();
      return;
    }
    toast(`HLS playback failed (${data.details}); showing MJPEG`, "error");
    stopHls(card);
    showMjpeg(card);
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    video.play().catch(() => {}); // muted autoplay; a refusal leaves the controls to the user
  });
  video.hidden = false;
}

export function stopHls(card) {
  const hls = card._hls;
  card._hls = null;
  card._recovered = false;
  const video = card.querySelector("video.hls");
  if (hls) hls.destroy();
  if (video) {
    video.hidden = true;
    video.removeAttribute("src");
  }
  const button = card.querySelector(".hls-toggle");
  if (button) {
    button.classList.remove("active");
    button.textContent = "HLS";
  }
}
