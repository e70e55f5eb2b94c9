// Group calls: who is in each group's call (for everyone, in the call or
// not), and the one call this tab takes part in. The signalling runs over
// the chat's WebSocket (call.* frames), or, for a call another instance of
// the server hosts (call_elsewhere), over a CallSocket of its own to that
// instance; the media over a CallPeer; the tiles are drawn by a CallStage;
// the device pickers are DevicePickers; who speaks is found by a
// SpeakerWatch.

import { api } from "./api.js";
import { DevicePickers } from "./call-devices.js";
import { openDevice, openLocalMedia } from "./call-media.js";
import { CallPeer } from "./call-peer.js";
import { CallSocket } from "./call-socket.js";
import { SpeakerWatch } from "./call-speaker.js";
import { CallStage } from "./call-stage.js";
import { claimErrors, isReady, onFrame, onLifecycle } from "./realtime.js";
import { $, notify } from "./ui.js";

// A shared screen is forwarded as sent to everyone: at most full HD, and
// 15 frames a second are plenty for slides and code (the encoder keeps
// the detail rather than the motion: contentHint "detail" below).
const SCREEN = { width: { max: 1920 }, height: { max: 1080 }, frameRate: { ideal: 15, max: 15 } };

// The server answers a join within a second or two; past this something
// is wrong and the person should not stare at "Joining…" forever.
const ANSWER_WAIT_MS = 15000;

// A call hosted elsewhere: the redirects followed for one join (a call that
// moves again meanwhile is followed, a loop is not), and the rejoins tried
// when the host's socket drops, each after a longer wait.
const MAX_HOPS = 3;
const MAX_REJOINS = 5;
const REJOIN_DELAY_MS = 1000;

const ENDED = {
  left: "",
  connection_closed: "",
  connection_failed: "The call's connection failed: your media stopped reaching the server. Join again to reconnect.",
  joined_elsewhere: "You joined this call from another tab or device, so it ended here.",
  removed_from_group: "You are no longer a member of this group, so you left its call.",
  server_shutdown: "The server is restarting, so the call ended. Join again in a moment.",
  no_answer: "The call ended: this browser did not answer the server in time.",
};

const REFUSED = {
  call_full: "This call is full: nobody else can join it right now.",
  call_ended: "The call ended just as you were joining. Join again to start a new one.",
  not_allowed: "You are not allowed to join calls in this group.",
  call_elsewhere: "This call is hosted by another gortc server, which keeps sending it elsewhere. Join again in a moment.",
  group_not_found: "You are not a member of this group, so you cannot join its call.",
  invalid_sdp: "The server could not use this browser's call setup. Reload the page, or try another browser.",
  not_in_call: "You are no longer in the call.",
};

let ctx = null; // what the chat lends us: send, titles, onRosterChange
let me = null;
let stage = null;
let pickers = null;
const rosters = new Map(); // group id → [{user_id, audio_muted, video_muted}], non-empty
let rosterChanges = 0; // call.participants frames received, so a stale answer is told
let shownGroupId = null; // the conversation on screen
let call = null; // the call this tab is in, or is joining

// options: send(frame) → bool, callTitleOf(groupId) ("Call in #Project"),
// onRosterChange() (the group list shows the counts)
export function initCalls(options) {
  ctx = options;
  stage = new CallStage();
  pickers = new DevicePickers((kind, deviceId) => switchDevice(kind, deviceId));
  const signedIn = (handler) => (frame) => (me ? handler(frame) : false);
  onFrame("call.participants", signedIn(onParticipants));
  onFrame("call.answer", signedIn(onAnswer));
  onFrame("call.offer", signedIn(onOffer));
  onFrame("call.ended", signedIn(onEnded));
  claimErrors(signedIn(onError));
  onLifecycle("ready", signedIn(callSocketReady));
  onLifecycle("down", signedIn(callSocketDown));
  $("#call-join").addEventListener("click", () => {
    if (shownGroupId) join(shownGroupId);
  });
  $("#call-mic").addEventListener("click", () => toggle("audio"));
  $("#call-camera").addEventListener("click", () => toggle("video"));
  $("#call-screen").addEventListener("click", () => {
    if (call?.screen) stopSharing(call);
    else shareScreen();
  });
  $("#call-screen-stop").addEventListener("click", () => {
    if (call?.screen) stopSharing(call);
  });
  // Phones' browsers cannot share their screen: no button that cannot work.
  $("#call-screen").hidden = !navigator.mediaDevices?.getDisplayMedia;
  $("#call-leave").addEventListener("click", () => leave());
  // Closing the tab: the others see us go now, not when the server notices.
  window.addEventListener("pagehide", () => leave());
}

export function startCalls(user) {
  me = user;
}

// Signing out: leave the call, forget what we knew.
export function stopCalls() {
  leave();
  rosters.clear();
  shownGroupId = null;
  me = null;
}

export function callCount(groupId) {
  return rosters.get(groupId)?.length || 0;
}

// -- what the chat tells us -------------------------------------------------

// The conversation now on screen (null for none): its header shows the
// call in progress and the join button. Asks the server who is in its call,
// so a call already going shows without waiting for a change.
export function showCallGroup(groupId) {
  shownGroupId = groupId;
  renderHeader();
  if (groupId) refreshRoster(groupId);
}

export function forgetCallGroup(groupId) {
  if (rosters.delete(groupId)) ctx.onRosterChange();
  if (groupId === shownGroupId) showCallGroup(null);
}

export function renameCallGroup(groupId) {
  if (call?.groupId === groupId) stage.setTitle(callTitle(groupId));
}

function callSocketDown() {
  // Calls may start and end unseen while we are away: forget them, and
  // ask again once back (see callSocketReady).
  rosters.clear();
  ctx.onRosterChange();
  renderHeader();
  // A call hosted elsewhere has a socket of its own: it goes on.
  if (!call || call.wsUrl) return;
  // The server ends a participant whose connection is gone; we keep the
  // camera and microphone and join again as soon as it is back.
  call.peer?.close();
  call.peer = null;
  call.phase = "reconnecting";
  renderControls();
  clearTimeout(call.answerTimer);
  stage.setRemoteMedia(new Map());
  stage.setParticipants([]);
  stage.setStatus("Connection to the server lost. Rejoining when it is back…");
}

function callSocketReady() {
  if (shownGroupId) refreshRoster(shownGroupId);
  if (call?.phase === "reconnecting" && !call.wsUrl && !call.retryTimer) connect(call);
}

// -- who is in a call ---------------------------------------------------------

async function refreshRoster(groupId) {
  const seen = rosterChanges;
  try {
    const answer = await api("GET", `/api/v1/groups/${encodeURIComponent(groupId)}/call`);
    // A call.participants that came meanwhile is newer: with several
    // instances, the answer may be read before the host wrote the change.
    if (rosterChanges === seen) setRoster(groupId, answer.participants || []);
  } catch {
    // Not a member any more, or offline: the group list and the socket say so.
  }
}

function onParticipants({ group_id: groupId, participants = [] }) {
  rosterChanges += 1;
  setRoster(groupId, participants);
}

function setRoster(groupId, participants) {
  if (participants.length) rosters.set(groupId, participants);
  else rosters.delete(groupId);
  ctx.onRosterChange();
  if (groupId === shownGroupId) renderHeader();
  if (call?.groupId === groupId && call.phase === "in") showParticipants();
}

function showParticipants() {
  const others = (rosters.get(call.groupId) || []).filter((p) => p.user_id !== me?.id);
  stage.setParticipants(others);
  if (call.peer) call.peer.publishRemote();
}

function renderHeader() {
  const count = shownGroupId ? callCount(shownGroupId) : 0;
  const here = Boolean(call) && call.groupId === shownGroupId;
  const status = $("#call-status");
  status.hidden = count === 0;
  status.textContent = here ? `In the call · ${count}` : `Call in progress · ${count}`;
  const join = $("#call-join");
  join.hidden = !shownGroupId || here;
  join.title = call && !here ? `This leaves your call: ${callTitle(call.groupId)}` : "";
}

// -- joining and leaving ------------------------------------------------------

async function join(groupId) {
  if (call?.groupId === groupId) return;
  if (call) leave();
  const mine = {
    groupId,
    phase: "starting", // → joining → in; reconnecting after the socket drops
    media: null,
    peer: null,
    audioMuted: false,
    videoMuted: false,
    screen: null, // the shared screen's track, while we share it
    speakers: null, // a SpeakerWatch, while in the call
    chain: Promise.resolve(), // server frames, one at a time, in order
    answerTimer: null,
    wsUrl: null, // the hosting instance's WebSocket, when not ours (call_elsewhere)
    remote: null, // the CallSocket to it
    hops: 0, // call_elsewhere followed for this join
    rejoins: 0, // rejoins after the host's socket dropped, since last in
    retryTimer: null,
  };
  call = mine;
  $("#call-join").disabled = true;
  stage.open(callTitle(groupId), me.id);
  stage.setLocal(null, mine);
  stage.setStatus("Starting your camera and microphone…");
  renderHeader();
  renderControls();
  try {
    mine.media = await openLocalMedia();
  } finally {
    $("#call-join").disabled = false;
  }
  if (call !== mine) {
    stopTracks(mine.media);
    return;
  }
  if (mine.media.notice) notify(mine.media.notice, "error");
  stage.setLocal(mine.media.stream, mine);
  renderControls();
  pickers.show({ audio: trackOf(mine, "audio"), video: trackOf(mine, "video") });
  mine.speakers = new SpeakerWatch(
    () => speakerLevels(mine),
    (ids) => { if (call === mine) stage.setSpeaking(ids); },
  );
  await connect(mine);
}

// Offers our media to the server: on joining, and again after the socket
// came back.
async function connect(mine) {
  mine.phase = "joining";
  stage.setStatus("Joining…");
  if (mine.wsUrl && !mine.remote && !(await openRemote(mine))) return;
  let iceServers = [];
  try {
    iceServers = (await api("GET", "/api/v1/calls/ice-servers")).ice_servers || [];
  } catch (error) {
    if (call === mine) end(`Could not join the call: ${error.message}`);
    return;
  }
  if (call !== mine || mine.phase !== "joining") return;
  const peer = new CallPeer(iceServers, mine.media.stream, {
    onRemote: (byUser) => {
      if (call === mine && mine.peer === peer) stage.setRemoteMedia(byUser);
    },
    onConnectionState: (state) => {
      if (call === mine && mine.peer === peer) onConnectionState(state);
    },
  }, mine.screen);
  mine.peer = peer;
  let sdp;
  try {
    sdp = await peer.createOffer();
  } catch (error) {
    if (call === mine) end(`This browser could not set up the call: ${error.message}`);
    return;
  }
  if (call !== mine || mine.peer !== peer) return;
  if (!signal(mine, callFrame("call.join", mine.groupId, { sdp }))) {
    // The socket is down: callSocketReady joins when it is back (or, for
    // the host's own socket, remoteLost rejoins).
    if (!mine.wsUrl) callSocketDown();
    return;
  }
  mine.answerTimer = setTimeout(() => {
    if (call === mine && mine.phase === "joining") {
      signal(mine, callFrame("call.leave", mine.groupId));
      end("The server did not answer: could not join the call. Try again.");
    }
  }, ANSWER_WAIT_MS);
}

function onAnswer({ group_id: groupId, sdp }) {
  const mine = call;
  if (mine?.groupId !== groupId || mine.phase !== "joining") return;
  clearTimeout(mine.answerTimer);
  const peer = mine.peer;
  serially(mine, async () => {
    await peer.acceptAnswer(sdp);
    if (call !== mine || mine.peer !== peer) return;
    mine.phase = "in";
    mine.hops = 0;
    mine.rejoins = 0;
    stage.setStatus(peer.pc.connectionState === "connected" ? "" : "Connecting…");
    // Muted (or without the device) before the server knew us: tell it
    // now, so the others see the badge or the placeholder.
    if (isMuted(mine, "audio")) sendMute(mine, "audio");
    if (isMuted(mine, "video")) sendMute(mine, "video");
    // Sharing since before the connection dropped: the others see it again.
    if (mine.screen) sendScreen(mine);
    showParticipants();
    renderHeader();
    renderControls();
  });
}

function onOffer({ group_id: groupId, sdp, tracks }) {
  const mine = call;
  if (mine?.groupId !== groupId || !mine.peer) return;
  const peer = mine.peer;
  // Queued behind the answer to our join, which the server sends first.
  serially(mine, async () => {
    const answer = await peer.answerOffer(sdp, tracks);
    if (call !== mine || mine.peer !== peer) return;
    signal(mine, callFrame("call.answer", groupId, { sdp: answer }));
  });
}

function onEnded({ group_id: groupId, reason }) {
  if (call?.groupId !== groupId) return;
  const text = reason in ENDED ? ENDED[reason] : `The call ended (${reason}).`;
  end(text);
}

function onError(frame) {
  const [type, groupId] = (frame.client_id || "").split(" ");
  if (!type.startsWith("call.")) return false;
  // Leaving cannot fail in a way that matters (we are gone either way), and
  // an error about a call since left is old news.
  if (type === "call.leave" || !call || groupId !== call.groupId) return true;
  const code = frame.code || "";
  if (code === "call_elsewhere" && frame.ws_url && type === "call.join" && call.phase === "joining") {
    follow(call, frame.ws_url);
    return true;
  }
  // A refused join left nothing to leave; a refused answer or mute did.
  if (call.phase === "in") signal(call, callFrame("call.leave", call.groupId));
  end(REFUSED[code] || `The call could not go on: ${frame.message || code}.`);
  return true;
}

// -- a call hosted by another instance ----------------------------------------

// Where this call's frames go: the host's own socket when the call is
// elsewhere, else the chat's. False when that socket is down.
function signal(mine, frame) {
  if (mine.wsUrl) return Boolean(mine.remote?.send(frame));
  return ctx.send(frame);
}

// Our server answered call_elsewhere: join again, on the socket of the
// instance that hosts the call.
function follow(mine, wsUrl) {
  clearTimeout(mine.answerTimer);
  mine.peer?.close();
  mine.peer = null;
  mine.remote?.close();
  mine.remote = null;
  mine.hops += 1;
  if (mine.hops > MAX_HOPS) {
    end(REFUSED.call_elsewhere);
    return;
  }
  mine.wsUrl = wsUrl;
  connect(mine);
}

// Opens the host's socket; false (the call ended with a message) if it
// cannot be reached.
async function openRemote(mine) {
  const remote = new CallSocket(mine.wsUrl, {
    onFrame: (frame) => {
      if (call === mine && mine.remote === remote) remoteFrame(frame);
    },
    onClose: (sessionEnded) => {
      if (call === mine && mine.remote === remote) remoteLost(mine, sessionEnded);
    },
  });
  mine.remote = remote;
  stage.setStatus("Joining on the server that hosts this call…");
  try {
    await remote.open();
  } catch (error) {
    if (call === mine && mine.remote === remote) {
      if (mine.rejoins > 0) remoteLost(mine, false);
      else end(`Could not reach the server that hosts this call: ${error.message}`);
    }
    return false;
  }
  return call === mine && mine.remote === remote;
}

// The host's socket carries chat events too (it is a whole connection):
// only the call's own frames matter here; the chat socket has the rest.
const REMOTE_FRAMES = {
  "call.answer": onAnswer,
  "call.offer": onOffer,
  "call.ended": onEnded,
  "call.participants": onParticipants,
  error: onError,
};

function remoteFrame(frame) {
  REMOTE_FRAMES[frame.type]?.(frame);
}

// The host's socket dropped (or could not be opened again): the host ended
// our part in the call. Keep camera and microphone and rejoin through our
// own server, which says where the call is now (it may have moved).
function remoteLost(mine, sessionEnded) {
  mine.remote?.close();
  mine.remote = null;
  mine.wsUrl = null;
  mine.hops = 0;
  if (sessionEnded) {
    end("The server hosting the call ended your sign-in there, so the call ended.");
    return;
  }
  mine.peer?.close();
  mine.peer = null;
  clearTimeout(mine.answerTimer);
  mine.phase = "reconnecting";
  renderControls();
  stage.setRemoteMedia(new Map());
  stage.setParticipants([]);
  mine.rejoins += 1;
  if (mine.rejoins > MAX_REJOINS) {
    end("Lost the connection to the server that hosts this call. Join again to retry.");
    return;
  }
  stage.setStatus("Connection to the server hosting the call lost. Rejoining…");
  const delay = REJOIN_DELAY_MS * 2 ** (mine.rejoins - 1);
  mine.retryTimer = setTimeout(() => {
    mine.retryTimer = null;
    // With the chat's socket down, callSocketReady rejoins once it is back.
    if (call === mine && mine.phase === "reconnecting" && isReady()) connect(mine);
  }, delay);
}

// A client→server call frame. The server echoes client_id in its errors:
// this one names the frame and the group, so a refusal is told apart from
// the chat's and matched to the call it is about.
function callFrame(type, groupId, fields = {}) {
  return { type, group_id: groupId, ...fields, client_id: `${type} ${groupId}` };
}

function onConnectionState(state) {
  if (call.phase !== "in" && call.phase !== "joining") return;
  if (state === "connected") stage.setStatus("");
  else if (state === "disconnected") stage.setStatus("The connection is unsteady. Trying to recover…");
  else if (state === "failed") {
    signal(call, callFrame("call.leave", call.groupId));
    end("The call's connection failed: no media could get through to the server. "
      + "A firewall may block it. Join again to retry.");
  } else if (call.phase === "in") stage.setStatus("Connecting…");
}

// Our own choice: tell the server, drop everything at once.
function leave() {
  if (!call) return;
  if (call.phase === "joining" || call.phase === "in") signal(call, callFrame("call.leave", call.groupId));
  end("");
}

// The call is over for this tab: the camera light goes off.
function end(message) {
  const mine = call;
  if (!mine) return;
  call = null;
  clearTimeout(mine.answerTimer);
  clearTimeout(mine.retryTimer);
  mine.remote?.close(); // after the call.leave just sent, if any
  mine.remote = null;
  mine.speakers?.stop();
  mine.peer?.close();
  stopTracks(mine.media);
  mine.screen?.stop();
  mine.screen = null;
  pickers.hide();
  stage.close();
  renderHeader();
  if (message) notify(message, "error");
}

function stopTracks(media) {
  for (const track of media?.stream?.getTracks() || []) track.stop();
}

// Server frames change the connection's state one after another; a
// failure ends the call rather than leaving it half set up.
function serially(mine, step) {
  mine.chain = mine.chain.then(step).catch((error) => {
    if (call === mine) {
      signal(mine, callFrame("call.leave", mine.groupId));
      end(`The call could not go on: ${error.message}`);
    }
  });
}

// -- microphone and camera ----------------------------------------------------

// Muting keeps the track (unmuting is then instant) but sends silence or
// black; the server tells the others, who show a badge or a placeholder.
function toggle(kind) {
  const mine = call;
  const track = trackOf(mine, kind);
  if (!track) return;
  const key = kind === "audio" ? "audioMuted" : "videoMuted";
  mine[key] = !mine[key];
  track.enabled = !mine[key];
  if (mine.phase === "in") sendMute(mine, kind);
  stage.setLocal(mine.media.stream, mine);
  renderControls();
}

function sendMute(mine, kind) {
  signal(mine, callFrame("call.mute", mine.groupId, { kind, muted: isMuted(mine, kind) }));
}

// A device we do not have is as good as muted, for the others.
function isMuted(mine, kind) {
  return (kind === "audio" ? mine.audioMuted : mine.videoMuted) || !trackOf(mine, kind);
}

function trackOf(mine, kind) {
  const stream = mine?.media?.stream;
  if (!stream) return null;
  return (kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks())[0] || null;
}

// -- screen sharing -----------------------------------------------------------

// The screen goes up as our second video track beside the camera (the
// connection always has a section for it), and the server is told we
// share, so the others show it large.
async function shareScreen() {
  const mine = call;
  if (!mine || mine.phase !== "in" || mine.screen) return;
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: SCREEN, audio: false });
  } catch (error) {
    // Cancelling the browser's picker is a choice, not a problem.
    if (error?.name !== "NotAllowedError" && error?.name !== "AbortError") {
      notify(`Your screen could not be shared: ${error?.message || error}`, "error", $("#call-panel"));
    }
    return;
  }
  const track = stream.getVideoTracks()[0];
  if (call !== mine || mine.phase !== "in" || mine.screen || !track) {
    for (const t of stream.getTracks()) t.stop();
    return;
  }
  track.contentHint = "detail"; // text stays sharp rather than smooth
  // The browser's own "Stop sharing" ends the track: stop here too.
  track.addEventListener("ended", () => {
    if (mine.screen === track) stopSharing(mine);
  });
  mine.screen = track;
  try {
    await mine.peer?.replaceTrack("screen", track);
  } catch (error) {
    stopSharing(mine);
    notify(`Your screen could not be shared: ${error.message}`, "error", $("#call-panel"));
    return;
  }
  if (call !== mine || mine.screen !== track) return;
  sendScreen(mine);
  stage.setSharing(true);
  renderControls();
}

function stopSharing(mine) {
  const track = mine.screen;
  if (!track) return;
  mine.screen = null;
  track.stop();
  mine.peer?.replaceTrack("screen", null).catch(() => {});
  if (mine.phase === "in") sendScreen(mine);
  if (call === mine) {
    stage.setSharing(false);
    renderControls();
  }
}

function sendScreen(mine) {
  signal(mine, callFrame("call.mute", mine.groupId, { kind: "screen", muted: !mine.screen }));
}

// -- devices and voices ---------------------------------------------------------

// Another camera or microphone, from the picker: the new track replaces
// the old on the connection (no renegotiation), keeping its mute.
function switchDevice(kind, deviceId) {
  const mine = call;
  if (!mine) return;
  // One switch at a time: a second pick waits for the first to be done.
  mine.switching = (mine.switching || Promise.resolve())
    .then(() => switchTo(mine, kind, deviceId))
    .catch(() => {}); // said to the person inside; the next pick goes on
}

async function switchTo(mine, kind, deviceId) {
  const old = trackOf(mine, kind);
  if (!old || old.getSettings?.().deviceId === deviceId) return;
  let track;
  try {
    track = await openDevice(kind, deviceId);
  } catch (error) {
    notify(error.message, "error", $("#call-devices"));
    pickers.refresh();
    return;
  }
  if (call !== mine || trackOf(mine, kind) !== old) {
    track.stop();
    return;
  }
  track.enabled = !(kind === "audio" ? mine.audioMuted : mine.videoMuted);
  try {
    await mine.peer?.replaceTrack(kind, track);
  } catch (error) {
    track.stop();
    notify(`Could not switch: ${error.message}`, "error", $("#call-devices"));
    pickers.refresh();
    return;
  }
  if (call !== mine) {
    track.stop(); // the call ended meanwhile
    return;
  }
  mine.media.stream.removeTrack(old);
  mine.media.stream.addTrack(track);
  old.stop();
  stage.setLocal(mine.media.stream, mine);
  pickers.show({ audio: trackOf(mine, "audio"), video: trackOf(mine, "video") });
}

// What the SpeakerWatch hears: everyone's levels, ours only when unmuted
// (a muted microphone still measures, but nobody hears it).
async function speakerLevels(mine) {
  if (call !== mine || !mine.peer || mine.phase !== "in") return new Map();
  const levels = await mine.peer.audioLevels();
  if (isMuted(mine, "audio")) levels.delete("local");
  return levels;
}

function renderControls() {
  const mic = $("#call-mic");
  const camera = $("#call-camera");
  const audio = trackOf(call, "audio");
  const video = trackOf(call, "video");
  mic.disabled = !audio;
  camera.disabled = !video;
  mic.textContent = call?.audioMuted ? "Unmute" : "Mute";
  camera.textContent = call?.videoMuted ? "Start camera" : "Stop camera";
  mic.setAttribute("aria-pressed", String(Boolean(call?.audioMuted)));
  camera.setAttribute("aria-pressed", String(Boolean(call?.videoMuted)));
  mic.title = audio ? "" : "No microphone in this call";
  camera.title = video ? "" : "No camera in this call";
  const screen = $("#call-screen");
  screen.disabled = call?.phase !== "in";
  screen.setAttribute("aria-pressed", String(Boolean(call?.screen)));
}

function callTitle(groupId) {
  return ctx.callTitleOf(groupId);
}
