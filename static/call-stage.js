// The call panel's video grid: our own preview first, then one tile per
// other participant with their name, a badge when their microphone is off
// and a placeholder when their camera is. It only shows what it is told.

import { $, el } from "./ui.js";

export class CallStage {
  // The chat's own helpers, so people look the same in both: withName
  // (userId, apply) resolves names as for message senders, initials(name),
  // colourOf(userId) picks the avatar colour.
  constructor({ withName, initials, colourOf }) {
    this.withName = withName;
    this.initials = initials;
    this.colourOf = colourOf;
    this.tiles = new Map(); // user id → tile (the remote ones)
    this.local = null;
  }

  open(title, meId) {
    $("#call-title").textContent = title;
    $("#call-panel").hidden = false;
    $("#call-grid").replaceChildren();
    this.tiles.clear();
    const local = this.tile("local", "You");
    local.badge.dataset.hue = this.colourOf(meId);
    this.withName(meId, (shown) => { local.badge.textContent = this.initials(shown); });
    this.local = local;
    $("#call-grid").append(local.node);
    this.countTiles();
  }

  close() {
    for (const video of $("#call-grid").querySelectorAll("video")) video.srcObject = null;
    $("#call-grid").replaceChildren();
    $("#call-panel").hidden = true;
    $("#call-state").textContent = "";
    this.tiles.clear();
    this.local = null;
  }

  setTitle(title) {
    $("#call-title").textContent = title;
  }

  setStatus(text) {
    $("#call-state").textContent = text;
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

  // participants: [{user_id, audio_muted, video_muted}] without ourselves.
  setParticipants(participants) {
    if (!this.local) return;
    const present = new Set();
    for (const participant of participants) {
      present.add(participant.user_id);
      let tile = this.tiles.get(participant.user_id);
      if (!tile) {
        tile = this.tile("remote", null, participant.user_id);
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
    this.countTiles();
  }

  // The stylesheet picks the number of columns from it.
  countTiles() {
    $("#call-grid").dataset.count = String(this.tiles.size + (this.local ? 1 : 0));
  }

  // byUser: Map user id → {audio, video} tracks, as the connection has them.
  setRemoteMedia(byUser) {
    for (const [userId, tile] of this.tiles) {
      const media = byUser.get(userId) || {};
      tile.tracks = media;
      attach(tile.video, [media.audio, media.video].filter(Boolean));
      this.showState(tile);
    }
  }

  // A remote tile shows what the server says of its participant; ours,
  // what we know of our own devices (tile.own).
  showState(tile) {
    const state = tile.own || {
      audioMuted: Boolean(tile.participant?.audio_muted),
      videoMuted: Boolean(tile.participant?.video_muted) || !tile.tracks?.video,
    };
    // No picture yet (the first keyframe is on its way), or none at all:
    // the person's initials rather than a black box.
    const dark = state.videoMuted || tile.video.videoWidth === 0;
    tile.muted.hidden = !state.audioMuted;
    tile.placeholder.hidden = !dark;
    tile.node.classList.toggle("camera-off", dark);
  }

  tile(kind, label, userId = null) {
    const video = el("video", { autoplay: true, playsInline: true });
    // Our own sound never plays back; others' plays from their tile.
    if (kind === "local") video.muted = true;
    const name = el("span", { className: "call-name", text: label || "…" });
    const badge = el("span", { className: "avatar", "aria-hidden": "true" });
    const placeholder = el("div", { className: "call-placeholder", hidden: true }, badge);
    const muted = el("span", {
      className: "call-muted", text: "Muted", title: "Microphone off", hidden: true,
    });
    const node = el("li", {
      className: `call-tile ${kind}`, dataset: userId ? { userId } : {},
    }, video, placeholder, name, muted);
    if (userId) {
      badge.dataset.hue = this.colourOf(userId);
      this.withName(userId, (shown) => {
        name.textContent = shown;
        badge.textContent = this.initials(shown);
        node.setAttribute("aria-label", shown);
      });
    } else {
      badge.textContent = this.initials(label);
      node.setAttribute("aria-label", label);
    }
    const tile = {
      node, video, name, badge, placeholder, muted, participant: null, tracks: null, own: null,
    };
    for (const event of ["loadeddata", "resize", "emptied"]) {
      video.addEventListener(event, () => this.showState(tile));
    }
    return tile;
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
