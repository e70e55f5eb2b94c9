// Plays a live room's HLS playlist in a <video>: by the browser itself where
// it plays HLS (Safari, recent Chromium), otherwise through the vendored
// hls.js on Media Source Extensions, loaded only then (it is 370 KB). The
// playlist and its segments are on this server, so the session cookie goes
// with every request, whichever plays them.

const HLS_TYPE = "application/vnd.apple.mpegurl";
const HLS_MODULE = "./vendor/hls.light.min.mjs";

const HLS_CONFIG = {
  // The ESM build has no worker of its own, and the one the UMD builds make
  // from a blob: URL would be refused by the page's CSP (workers fall back
  // to default-src 'self'). The published worker, served from here, is
  // allowed: transmuxing stays off the main thread.
  enableWorker: true,
  workerPath: "/static/vendor/hls.worker.js",
  // Segments last 1 s (OBS's keyframe interval at 1 s) or 2 s: starting two
  // segments behind the newest keeps 2–4 s behind the streamer and rides
  // out one late segment.
  liveSyncDurationCount: 2,
  // Past six behind (a stall, a tab in the background) it jumps ahead…
  liveMaxLatencyDurationCount: 6,
  // …and in between it catches up by playing up to 10 % faster, which
  // nobody hears, rather than skipping.
  maxLiveSyncPlaybackRate: 1.1,
  // The server writes whole segments, no LL-HLS parts to ask for.
  lowLatencyMode: false,
  // What was watched is not watched again: a long stream must not fill
  // the browser's media memory.
  backBufferLength: 30,
};

// The server makes the playlist a moment after the stream starts: ask
// again every so often until it lists a segment.
const PLAYLIST_POLL_MS = 700;
// A broken playback (network gone, the decoder lost) starts over, waiting
// longer each time, up to this.
const MAX_RETRY_MS = 8000;

export class LivePlayer {
  // handlers: onState(state) with "waiting" (no picture yet), "playing",
  // "buffering", "muted" (the browser refused sound until a click),
  // "unsupported", "failed"; onEnded() when the stream has finished.
  constructor(video, handlers) {
    this.video = video;
    this.handlers = handlers;
    this.session = null;
    const tell = (state) => {
      if (this.session && !this.session.over) this.handlers.onState(state);
    };
    video.addEventListener("playing", () => {
      if (this.session) this.session.failures = 0; // playing again: a fresh start
      tell(this.session?.autoMuted && video.muted ? "muted" : "playing");
    });
    video.addEventListener("volumechange", () => {
      // Unmuted with the controls: the note about sound has done its job.
      if (this.session?.autoMuted && !video.muted) {
        this.session.autoMuted = false;
        tell(video.paused ? "buffering" : "playing");
      }
    });
    video.addEventListener("waiting", () => tell("buffering"));
    // The playlist's end marker: the streamer stopped (the WebSocket's
    // live.ended usually says so first).
    video.addEventListener("ended", () => {
      if (this.session && !this.session.over) this.finish();
    });
    video.addEventListener("error", () => {
      const session = this.session;
      // hls.js reports its own errors; this is the browser's player.
      if (session?.engine === "native" && !session.over) this.retry(session);
    });
  }

  start(url) {
    this.stop();
    const session = {
      url, engine: null, hls: null, timer: null, failures: 0, recoveries: 0, over: false,
      autoMuted: false, abort: new AbortController(),
    };
    this.session = session;
    this.load(session);
  }

  // Stops fetching and frees the decoder; the element shows nothing.
  stop() {
    const session = this.session;
    if (!session) return;
    this.session = null;
    this.halt(session);
    const video = this.video;
    video.pause();
    video.removeAttribute("src");
    video.load();
    delete video.dataset.engine;
  }

  halt(session) {
    session.over = true;
    session.abort.abort();
    clearTimeout(session.timer);
    session.hls?.destroy();
    session.hls = null;
  }

  finish() {
    const session = this.session;
    if (!session || session.over) return;
    this.stop();
    this.handlers.onEnded();
  }

  async load(session) {
    this.handlers.onState("waiting");
    let ready;
    try {
      ready = await firstSegment(session);
    } catch (error) {
      if (session.over) return;
      this.retry(session);
      return;
    }
    if (session.over) return;
    if (ready === "ended") {
      this.finish();
      return;
    }
    const video = this.video;
    // hls.js wherever Media Source Extensions exist: it holds two segments
    // behind the live edge (measured: about 2.3–2.6 s behind the streamer
    // with 1 s segments, 5 s with 2 s ones); browsers' own HLS players hold
    // three or more (about 4 s in Chromium at 1 s). Their own player elsewhere
    // (iPhones before iOS 17.1 have no MSE).
    const mediaSource = "MediaSource" in window || "ManagedMediaSource" in window;
    if (!mediaSource && video.canPlayType(HLS_TYPE)) {
      session.engine = "native";
      video.dataset.engine = "native";
      video.src = session.url;
    } else {
      const Hls = await loadHls().catch(() => null);
      if (session.over) return;
      if (!Hls?.isSupported()) {
        this.handlers.onState("unsupported");
        return;
      }
      session.engine = "hls.js";
      video.dataset.engine = "hls.js";
      const hls = new Hls(HLS_CONFIG);
      session.hls = hls;
      hls.on(Hls.Events.ERROR, (_event, data) => this.onHlsError(session, Hls, data));
      hls.loadSource(session.url);
      hls.attachMedia(video);
    }
    this.autoplay(session);
  }

  // The click that opened the room lets the page play sound in most
  // browsers; where it does not, playing muted beats a black box, and the
  // controls unmute.
  async autoplay(session) {
    const video = this.video;
    try {
      await video.play();
    } catch (error) {
      if (session.over || error.name !== "NotAllowedError") return;
      session.autoMuted = true;
      video.muted = true;
      this.handlers.onState("muted");
      await video.play().catch(() => {});
    }
  }

  onHlsError(session, Hls, data) {
    if (session.over || !data.fatal) return; // hls.js retries the rest itself
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && session.recoveries < 2) {
      // A decoder that choked on a frame: rebuild the media pipeline and
      // carry on where it was.
      session.recoveries += 1;
      session.hls.recoverMediaError();
      return;
    }
    this.retry(session);
  }

  // Starts again from the playlist: if the stream has ended meanwhile,
  // that is what the playlist (404 not_live) then says.
  retry(session) {
    if (session !== this.session || session.over) return;
    session.failures += 1;
    const failures = session.failures;
    this.halt(session);
    const video = this.video;
    video.removeAttribute("src");
    video.load();
    if (failures > 6) {
      this.handlers.onState("failed");
      return;
    }
    const next = {
      ...session, hls: null, engine: null, over: false, abort: new AbortController(),
      recoveries: 0,
    };
    this.session = next;
    this.handlers.onState("waiting");
    next.timer = setTimeout(() => this.load(next), Math.min(MAX_RETRY_MS, 500 * 2 ** failures));
  }
}

// Resolves "ready" once the playlist lists a segment, "ended" when nobody
// is live there (any more); throws when it cannot tell (offline, 5xx).
async function firstSegment(session) {
  for (;;) {
    const response = await fetch(session.url, {
      credentials: "same-origin", cache: "no-store", signal: session.abort.signal,
    });
    if (response.ok) {
      const playlist = await response.text();
      if (playlist.includes("#EXT-X-ENDLIST")) return "ended";
      if (playlist.includes("#EXTINF")) return "ready";
    } else if (response.status === 404) {
      const body = await response.json().catch(() => null);
      if (body?.error?.code === "not_live") return "ended";
      // not_found: live, but no playlist written yet.
    } else {
      throw new Error(`the playlist answered ${response.status}`);
    }
    await pause(PLAYLIST_POLL_MS, session.abort.signal);
  }
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("stopped", "AbortError"));
    }, { once: true });
  });
}

let hlsModule = null;

function loadHls() {
  hlsModule ||= import(HLS_MODULE).then((module) => module.default);
  hlsModule.catch(() => { hlsModule = null; }); // a failed load may work next time
  return hlsModule;
}
