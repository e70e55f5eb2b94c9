// One browser's media connection to the server's call (an SFU): our own
// tracks go up in the offer we join with; everyone else's come down in
// the offers the server sends whenever someone's tracks come or go.
//
// The server does not take ICE candidates one by one (no trickle), so every
// description we hand over waits until gathering is complete and carries
// all of them.

// Host candidates take milliseconds; a STUN or TURN server that does not
// answer would hold gathering for much longer. After this we send what we
// have rather than keep the person waiting.
const GATHER_LIMIT_MS = 8000;

export class CallPeer {
  // handlers: onRemote(Map user id → {audio, video} MediaStreamTracks),
  // onConnectionState(state)
  constructor(iceServers, localStream, handlers) {
    this.handlers = handlers;
    this.owners = new Map(); // mid → user id, from the server's last offer
    this.streamOwners = new Map(); // mid → user id, from its msid (the fallback)
    this.closed = false;
    this.pc = new RTCPeerConnection({ iceServers });
    if (localStream) {
      for (const track of localStream.getTracks()) this.pc.addTrack(track, localStream);
    } else {
      // Nothing to send, but an offer needs a media section to set up the
      // connection at all: ask to receive, which is all we can do.
      this.pc.addTransceiver("audio", { direction: "recvonly" });
      this.pc.addTransceiver("video", { direction: "recvonly" });
    }
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

  async acceptAnswer(sdp) {
    await this.pc.setRemoteDescription({ type: "answer", sdp });
    this.publishRemote();
  }

  // A renegotiation from the server. tracks: [{mid, user_id, kind}] says
  // whose media each section carries now (a section of someone who left
  // goes inactive, and may later carry someone else).
  async answerOffer(sdp, tracks = []) {
    this.owners = new Map(tracks.map((track) => [track.mid, track.user_id]));
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
      media[track.kind] = track;
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
