// One browser's media connection to the server's call (an SFU): our own
// tracks go up in the offer we join with; everyone else's come down in
// the offers the server sends whenever someone's tracks come or go.
//
// The server does not take ICE candidates one by one (no trickle), so every
// description we hand over waits until gathering is complete and carries
// all of them.
//
// The server tells what our sections carry by their order: the audio
// section is the microphone, the first video section the camera, the
// second the shared screen. So all three are always offered (a device we
// do not have only receives), and sharing the screen, or switching to
// another camera or microphone, is a replaceTrack: no renegotiation.

// Host candidates take milliseconds; a STUN or TURN server that does not
// answer would hold gathering for much longer. After this we send what we
// have rather than keep the person waiting.
const GATHER_LIMIT_MS = 8000;

export class CallPeer {
  // handlers: onRemote(Map user id → {audio, video, screen}
  // MediaStreamTracks), onConnectionState(state). screenTrack: the screen
  // being shared, if any (after a reconnection).
  constructor(iceServers, localStream, handlers, screenTrack = null) {
    this.handlers = handlers;
    this.owners = new Map(); // mid → user id, from the server's last offer
    this.sources = new Map(); // mid → "camera" | "screen" | "microphone"
    this.streamOwners = new Map(); // mid → user id, from its msid (the fallback)
    this.closed = false;
    this.pc = new RTCPeerConnection({ iceServers });
    // Microphone, camera, screen, in this order (see above).
    this.senders = {};
    for (const kind of ["audio", "video"]) {
      const track = (kind === "audio"
        ? localStream?.getAudioTracks() : localStream?.getVideoTracks())?.[0];
      this.senders[kind] = track
        ? this.pc.addTrack(track, localStream)
        : this.pc.addTransceiver(kind, { direction: "recvonly" }).sender;
    }
    this.senders.screen = this.pc.addTransceiver(screenTrack || "video", {
      direction: "sendonly",
    }).sender;
    this.pc.addEventListener("track", () => this.publishRemote());
    this.pc.addEventListener("connectionstatechange", () => {
      if (!this.closed) this.handlers.onConnectionState(this.pc.connectionState);
    });
  }

  // The SDP of our call.join: our tracks, and every ICE candidate.
  async createOffer() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await gatheringComplete(this.pc);
    return this.pc.localDescription.sdp;
  }

  // Another camera or microphone, or the screen to share (null: none),
  // in place of what went before.
  async replaceTrack(what, track) {
    if (this.closed) return;
    await this.senders[what].replaceTrack(track);
  }

  // What each person's microphone sounded like since the last call, from
  // the decoded audio's energy (so a short beep between two calls counts):
  // Map user id → RMS level 0…1, with "local" for our own microphone.
  async audioLevels() {
    const levels = new Map();
    if (this.closed) return levels;
    const ownerOfTrack = new Map();
    for (const transceiver of this.pc.getTransceivers()) {
      const owner = this.owners.get(transceiver.mid) ?? this.streamOwners.get(transceiver.mid);
      if (owner && transceiver.receiver.track) ownerOfTrack.set(transceiver.receiver.track.id, owner);
    }
    const stats = await this.pc.getStats();
    const seen = new Map();
    for (const report of stats.values()) {
      if (report.kind !== "audio" || report.totalAudioEnergy === undefined) continue;
      let who = null;
      if (report.type === "inbound-rtp") who = ownerOfTrack.get(report.trackIdentifier);
      else if (report.type === "media-source") who = "local";
      if (!who) continue;
      const before = this.energies?.get(report.id);
      seen.set(report.id, report);
      if (!before) continue;
      const seconds = report.totalSamplesDuration - before.totalSamplesDuration;
      const energy = report.totalAudioEnergy - before.totalAudioEnergy;
      const level = seconds > 0 && energy > 0 ? Math.sqrt(energy / seconds) : 0;
      levels.set(who, Math.max(levels.get(who) || 0, level));
    }
    this.energies = seen;
    return levels;
  }

  async acceptAnswer(sdp) {
    await this.pc.setRemoteDescription({ type: "answer", sdp });
    this.publishRemote();
  }

  // A renegotiation from the server. tracks: [{mid, user_id, kind, source}]
  // says whose media each section carries now, and what (a section of
  // someone who left goes inactive, and may later carry someone else).
  async answerOffer(sdp, tracks = []) {
    this.owners = new Map(tracks.map((track) => [track.mid, track.user_id]));
    this.sources = new Map(tracks.map((track) => [track.mid, track.source]));
    // The server also names each forwarded stream after its publisher: a
    // fallback for a section the track list does not mention.
    this.streamOwners = streamIdsByMid(sdp);
    await this.pc.setRemoteDescription({ type: "offer", sdp });
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await gatheringComplete(this.pc);
    this.publishRemote();
    return this.pc.localDescription.sdp;
  }

  // Who is seen and heard through which track, from the sections that
  // receive now; a departed participant's sections no longer do.
  publishRemote() {
    if (this.closed) return;
    const byUser = new Map();
    for (const transceiver of this.pc.getTransceivers()) {
      const direction = transceiver.currentDirection;
      if (!transceiver.mid || (direction !== "recvonly" && direction !== "sendrecv")) continue;
      const owner = this.owners.get(transceiver.mid) ?? this.streamOwners.get(transceiver.mid);
      const track = transceiver.receiver.track;
      if (!owner || !track || track.readyState === "ended") continue;
      const media = byUser.get(owner) || {};
      media[this.sources.get(transceiver.mid) === "screen" ? "screen" : track.kind] = track;
      byUser.set(owner, media);
    }
    this.handlers.onRemote(byUser);
  }

  close() {
    this.closed = true;
    this.pc.close();
  }
}

function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, GATHER_LIMIT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// mid → the stream id of its "a=msid:<stream id> <track id>" line.
function streamIdsByMid(sdp) {
  const owners = new Map();
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    const stream = /^a=msid:(\S+)/m.exec(section)?.[1];
    if (mid && stream && stream !== "-") owners.set(mid, stream);
  }
  return owners;
}
