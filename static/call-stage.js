// The call panel's tiles: our own preview first, then one tile per other
// participant with their name, a badge when their microphone is off and
// their picture (or initials) when their camera is; a shared screen gets a
// large tile of its own on the stage, the faces going small beside it.
// Whoever speaks is outlined (.speaking). It only shows what it is told.

import { $, el } from "./ui.js";
import { avatarElement, withName } from "./users.js";

export class CallStage {
  constructor() {
    this.tiles = new Map(); // user id → tile (the remote ones)
    this.screens = new Map(); // user id → their shared screen's tile
    this.local = null;
    this.speaking = new Set(); // user ids, "local" for ourselves
  }

  open(title, meId) {
    $("#call-title").textContent = title;
    $("#call-panel").hidden = false;
    $("#call-grid").replaceChildren();
    $("#call-screens").replaceChildren();
    this.tiles.clear();
    this.screens.clear();
    this.speaking = new Set();
    const local = this.tile("local", meId);
    local.name.textContent = "You";
    local.node.setAttribute("aria-label", "You");
    this.local = local;
    $("#call-grid").append(local.node);
    this.layOut();
  }

  close() {
    for (const video of $("#call-panel").querySelectorAll("video")) video.srcObject = null;
    $("#call-grid").replaceChildren();
    $("#call-screens").replaceChildren();
    $("#call-panel").hidden = true;
    $("#call-state").textContent = "";
    this.setSharing(false);
    this.tiles.clear();
    this.screens.clear();
    this.local = null;
    this.layOut();
  }

  setTitle(title) {
    $("#call-title").textContent = title;
  }

  setStatus(text) {
    $("#call-state").textContent = text;
  }

  // We share our screen: the note saying so, with its Stop button.
  setSharing(sharing) {
    $("#call-sharing").hidden = !sharing;
  }

  // Our own camera, mirrored as people expect of a preview, and always
  // muted: hearing oneself would feed back into the microphone.
  setLocal(stream, { audioMuted, videoMuted }) {
    if (!this.local) return;
    const hasVideo = Boolean(stream?.getVideoTracks().length);
    const hasAudio = Boolean(stream?.getAudioTracks().length);
    attach(this.local.video, hasVideo ? stream.getVideoTracks() : []);
    this.local.own = { audioMuted: audioMuted || !hasAudio, videoMuted: videoMuted || !hasVideo };
    this.showState(this.local);
  }

  // participants: [{user_id, audio_muted, video_muted, screen_sharing}]
  // without ourselves.
  setParticipants(participants) {
    if (!this.local) return;
    const present = new Set();
    for (const participant of participants) {
      present.add(participant.user_id);
      let tile = this.tiles.get(participant.user_id);
      if (!tile) {
        tile = this.tile("remote", participant.user_id);
        this.tiles.set(participant.user_id, tile);
        $("#call-grid").append(tile.node);
      }
      tile.participant = participant;
      this.showState(tile);
    }
    for (const [userId, tile] of this.tiles) {
      if (present.has(userId)) continue;
      tile.video.srcObject = null;
      tile.node.remove();
      this.tiles.delete(userId);
    }
    this.showScreens();
  }

  // byUser: Map user id → {audio, video, screen} tracks, as the connection
  // has them.
  setRemoteMedia(byUser) {
    for (const [userId, tile] of this.tiles) {
      const media = byUser.get(userId) || {};
      tile.tracks = media;
      attach(tile.video, [media.audio, media.video].filter(Boolean));
      this.showState(tile);
    }
    this.showScreens();
  }

  // ids: who speaks now (user ids, "local" for us).
  setSpeaking(ids) {
    this.speaking = ids;
    if (this.local) this.local.node.classList.toggle("speaking", ids.has("local"));
    for (const [userId, tile] of this.tiles) tile.node.classList.toggle("speaking", ids.has(userId));
  }

  // A screen tile for each participant who says they share and whose
  // screen track has arrived; none for those who stopped.
  showScreens() {
    for (const [userId, tile] of this.tiles) {
      const track = tile.participant?.screen_sharing ? tile.tracks?.screen : null;
      let screen = this.screens.get(userId);
      if (track && !screen) {
        screen = this.screenTile(userId);
        this.screens.set(userId, screen);
        $("#call-screens").append(screen.node);
      }
      if (screen) attach(screen.video, track ? [track] : []);
      if (screen && !track) {
        screen.node.remove();
        this.screens.delete(userId);
      }
    }
    for (const [userId, screen] of this.screens) {
      if (this.tiles.has(userId)) continue;
      screen.video.srcObject = null;
      screen.node.remove();
      this.screens.delete(userId);
    }
    this.layOut();
  }

  // The stylesheet picks the number of columns from the count of faces,
  // and the stage layout when a screen is shared.
  layOut() {
    $("#call-grid").dataset.count = String(this.tiles.size + (this.local ? 1 : 0));
    const staged = this.screens.size > 0;
    $("#call-screens").hidden = !staged;
    $("#call-stage").classList.toggle("staged", staged);
  }

  // A remote tile shows what the server says of its participant; ours,
  // what we know of our own devices (tile.own).
  showState(tile) {
    const state = tile.own || {
      audioMuted: Boolean(tile.participant?.audio_muted),
      videoMuted: Boolean(tile.participant?.video_muted) || !tile.tracks?.video,
    };
    // No picture yet (the first keyframe is on its way), or none at all:
    // the person's picture or initials rather than a black box.
    const dark = state.videoMuted || tile.video.videoWidth === 0;
    tile.muted.hidden = !state.audioMuted;
    tile.placeholder.hidden = !dark;
    tile.node.classList.toggle("camera-off", dark);
  }

  tile(kind, userId) {
    const video = el("video", { autoplay: true, playsInline: true });
    // Our own sound never plays back; others' plays from their tile.
    if (kind === "local") video.muted = true;
    const name = el("span", { className: "call-name", text: "…" });
    const placeholder = el("div", { className: "call-placeholder", hidden: true },
      avatarElement(userId));
    const muted = el("span", {
      className: "call-muted", text: "Muted", title: "Microphone off", hidden: true,
    });
    const node = el("li", {
      className: `call-tile ${kind}`, dataset: kind === "remote" ? { userId } : {},
    }, video, placeholder, name, muted);
    if (kind === "remote") {
      withName(userId, (shown) => {
        name.textContent = shown;
        node.setAttribute("aria-label", shown);
      });
    }
    const tile = { node, video, name, placeholder, muted, participant: null, tracks: null, own: null };
    for (const event of ["loadeddata", "resize", "emptied"]) {
      video.addEventListener(event, () => this.showState(tile));
    }
    return tile;
  }

  // Shown whole (contain, not cropped: text must stay readable), silent.
  screenTile(userId) {
    const video = el("video", { autoplay: true, playsInline: true });
    video.muted = true;
    const name = el("span", { className: "call-name", text: "…" });
    const node = el("li", { className: "call-tile screen", dataset: { userId } }, video, name);
    withName(userId, (shown) => {
      name.textContent = `${shown}'s screen`;
      node.setAttribute("aria-label", `${shown}'s screen`);
    });
    return { node, video, name };
  }
}

// Gives the element exactly these tracks, keeping its stream (and so its
// playback) when they have not changed.
function attach(video, tracks) {
  const current = video.srcObject?.getTracks() || [];
  const same = current.length === tracks.length && tracks.every((t) => current.includes(t));
  if (same) return;
  video.srcObject = tracks.length ? new MediaStream(tracks) : null;
  // Joining was a click, so the page may play sound; a refusal leaves the
  // element paused rather than throwing into the console.
  if (tracks.length) video.play().catch(() => {});
}
