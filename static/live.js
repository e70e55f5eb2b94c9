// Live streaming, the viewer's side: the "Live" list in the sidebar (from
// GET /api/v1/live, kept current by live.started / live.ended over the
// chat's WebSocket), and the room being watched, with its chat (live.watch,
// live.chat, live.unwatch frames; see docs/api.md). The stage draws it.

import { api } from "./api.js";
import { LiveStage, viewersText } from "./live-room.js";
import { claimErrors, onFrame, onLifecycle } from "./realtime.js";
import { $, el, notify, randomId } from "./ui.js";
import { avatarElement, withName } from "./users.js";

// Viewer counts come only with the list (no event carries them): while
// anyone is live, the list is read again this often.
const REFRESH_MS = 15000;
// The server counts viewers every 5 s: a room just opened counts us after.
const COUNTED_MS = 6000;
// How long each room has been live is redrawn this often.
const TICK_MS = 20000;

const ENDED = {
  ended: "The stream has ended.",
  stalled: "The stream has ended: the streamer's connection stopped sending.",
  broken: "The stream has ended: the server could not read it.",
  server_shutdown: "The stream has ended: the server is restarting.",
};

let ctx = null; // what the chat lends us: send, onViewChange
let me = null;
let stage = null;
const rooms = new Map(); // room id → room, oldest stream first
let changes = 0; // live.started / live.ended frames seen, to spot a stale list
let watching = null; // {room, over}: the room on screen (over: its stream ended)
let refreshTimer = null;
let tickTimer = null;

// options: send(frame) → bool, onViewChange() (the room opened or closed:
// the chat shows or hides its conversation)
export function initLive(options) {
  ctx = options;
  stage = new LiveStage({ onSend: sendLine, onLeave: () => leaveLive(), withName });
  const signedIn = (handler) => (frame) => (me ? handler(frame) : false);
  onFrame("live.started", signedIn((frame) => onStarted(frame.room)));
  onFrame("live.ended", signedIn(onEnded));
  onFrame("live.watching", signedIn(onWatching));
  onFrame("live.chat", signedIn(onChat));
  claimErrors(signedIn(onError));
  onLifecycle("ready", signedIn(liveSocketReady));
  onLifecycle("down", signedIn(liveSocketDown));
  $("#live-copy-link").addEventListener("click", copyPlayerLink);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && me) refresh();
  });
}

export function startLive(user) {
  me = user;
  refresh();
  tickTimer = setInterval(renderList, TICK_MS);
}

// Signing out: leave the room (while the socket can still say so), forget.
export function stopLive() {
  leaveLive();
  clearInterval(tickTimer);
  clearTimeout(refreshTimer);
  tickTimer = null;
  refreshTimer = null;
  rooms.clear();
  me = null;
  renderList();
}

export function isWatchingLive() {
  return watching !== null;
}

// Closes the room on screen, if any (the person picked a conversation).
export function leaveLive() {
  if (!watching) return;
  const { room, over } = watching;
  watching = null;
  if (!over) ctx.send({ type: "live.unwatch", room_id: room.id, client_id: `live.unwatch ${room.id}` });
  stage.hide();
  renderList();
  ctx.onViewChange();
}

function liveSocketReady() {
  // Streams may have started and ended unseen while we were away.
  refresh();
  // The server forgot what this connection watched with the old one.
  if (watching && !watching.over) sendWatch();
}

function liveSocketDown() {
  if (!watching || watching.over) return;
  stage.setChatState("Connection lost: reconnecting…", "error");
  stage.failPending("Not sent: the connection dropped.");
}

// -- the list -----------------------------------------------------------------

async function refresh() {
  clearTimeout(refreshTimer);
  refreshTimer = null;
  const mine = me;
  const seen = changes;
  let page;
  try {
    page = await api("GET", "/api/v1/live");
  } catch {
    page = null; // offline or signed out: the socket and the session say so
  }
  if (me !== mine || !me) return;
  if (page && seen !== changes) {
    // A stream started or ended while the answer was on its way: it may
    // not know. Ask again rather than undo what the event said.
    refresh();
    return;
  }
  if (page) {
    rooms.clear();
    for (const room of page.items) rooms.set(room.id, room);
    if (watching && !watching.over) {
      const now = rooms.get(watching.room.id);
      if (now) {
        watching.room = now;
        stage.update(now);
      } else {
        endWatching("ended"); // it ended while we were not listening
      }
    }
    renderList();
  }
  clearTimeout(refreshTimer); // another refresh may have ended meanwhile: one loop
  refreshTimer = rooms.size > 0 ? setTimeout(refresh, REFRESH_MS) : null;
}

function onStarted(room) {
  changes += 1;
  rooms.set(room.id, room);
  renderList();
  if (!refreshTimer) refreshTimer = setTimeout(refresh, REFRESH_MS);
  // The same streamer again, while their last stream's ending is on screen.
  if (watching?.over && watching.room.id === room.id) stage.systemLine("They are live again: open the room from the list.");
}

function onEnded({ room_id: roomId, reason }) {
  changes += 1;
  rooms.delete(roomId);
  renderList();
  if (watching?.room.id === roomId && !watching.over) endWatching(reason);
}

function renderList() {
  const items = [...rooms.values()].map((room) => {
    const current = watching?.room.id === room.id;
    const name = el("span", { className: "name", text: room.username });
    withName(room.user_id, (shown) => { name.textContent = shown; });
    const since = liveFor(room.started_at);
    return el("li", {},
      el("button", {
        type: "button", className: "live-link", dataset: { roomId: room.id },
        "aria-current": current ? "true" : null,
        title: `${room.title || "Live"} — @${room.username}`,
        onclick: () => watch(room.id),
      },
      el("span", { className: "live-face" },
        avatarElement(room.user_id),
        el("span", { className: "live-dot", "aria-hidden": "true" })),
      el("span", { className: "live-info" },
        name,
        el("span", { className: "live-title", text: room.title || "Live" }),
        el("span", { className: "live-meta" },
          el("span", { className: "viewers", text: viewersText(room.viewers) }),
          " · ",
          el("span", { className: "since", text: since, title: new Date(room.started_at).toLocaleString() })))));
  });
  $("#live-list").replaceChildren(...items);
  $("#no-live").hidden = items.length > 0;
}

// "live 5 min", "live 1 h 20 min"; a clock a little ahead of the server's
// does not make it negative.
function liveFor(startedAt) {
  const minutes = Math.max(0, Math.floor((Date.now() - new Date(startedAt).getTime()) / 60000));
  if (minutes < 1) return "just started";
  if (minutes < 60) return `live ${minutes} min`;
  return `live ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// -- watching -----------------------------------------------------------------

function watch(roomId) {
  const room = rooms.get(roomId);
  if (!room) return;
  if (watching?.room.id === roomId && !watching.over) return;
  leaveLive();
  watching = { room, over: false };
  stage.show(room, () => {
    // The playlist's end marker: the stream is over even if no live.ended
    // reached us (the socket may be down).
    if (watching?.room.id === room.id && !watching.over) endWatching("ended");
  });
  sendWatch();
  renderList();
  ctx.onViewChange();
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, COUNTED_MS);
}

// The room's hls_url as GET /api/v1/live gives it to this viewer: absolute,
// with a token of theirs (or none for a public room), so a plain player
// with no cookies plays it. Asked afresh: live.started frames carry no token.
async function copyPlayerLink(event) {
  const button = event.currentTarget;
  const roomId = watching?.room.id;
  if (!roomId) return;
  let url = null;
  try {
    const page = await api("GET", "/api/v1/live");
    url = page.items.find((room) => room.id === roomId)?.hls_url ?? null;
  } catch (error) {
    notify(error.message, "error", button.parentElement);
    return;
  }
  if (!url) {
    notify("The stream has ended: there is nothing to play.", "error", button.parentElement);
    return;
  }
  try {
    await navigator.clipboard.writeText(url);
    notify("Player link copied: open it in VLC (Media → Open Network Stream) or any HLS player.", "ok", button.parentElement);
  } catch {
    // No clipboard outside a secure context: show the link to copy by hand.
    window.prompt("Copy this link into VLC or any HLS player:", url);
  }
}

function sendWatch() {
  const roomId = watching.room.id;
  if (ctx.send({ type: "live.watch", room_id: roomId, client_id: `live.watch ${roomId}` })) {
    stage.setChatState("Joining the chat…");
  } else {
    stage.setChatState("Not connected: the chat joins when the connection is back.", "error");
  }
}

function onWatching({ room_id: roomId }) {
  if (watching?.room.id !== roomId || watching.over) return;
  stage.setChatState("");
}

function endWatching(reason) {
  watching.over = true;
  stage.ended(ENDED[reason] || ENDED.ended);
  renderList();
}

function onChat(frame) {
  if (watching?.room.id !== frame.room_id) return;
  stage.addLine(frame, frame.user_id === me?.id);
}

function sendLine(body) {
  if (!watching || watching.over) return false;
  const clientId = `live.chat ${randomId()}`;
  const sent = ctx.send({
    type: "live.chat", room_id: watching.room.id, body, client_id: clientId,
  });
  if (!sent) {
    stage.setChatState("Not connected: your line was not sent. Try again in a moment.", "error");
    return false;
  }
  stage.addPending(clientId, body, me.username);
  return true;
}

const REFUSED = {
  rate_limited: (frame) => `Not sent: you are sending too fast. Wait ${Math.max(1, Math.ceil(frame.retry_after || 1))} s.`,
  not_live: () => "Not sent: the stream is not live any more.",
  invalid_body: () => "Not sent: a line has 1 to 500 characters.",
};

function onError(frame) {
  const clientId = frame.client_id || "";
  if (!clientId.startsWith("live.")) return false;
  const [type, roomId] = clientId.split(" ");
  if (type === "live.unwatch") return true; // gone either way
  if (type === "live.watch") {
    if (watching?.room.id !== roomId || watching.over) return true;
    if (frame.code === "not_live") {
      rooms.delete(roomId);
      endWatching("ended");
    } else {
      stage.setChatState(`Could not join the chat: ${frame.message || frame.code}`, "error");
    }
    return true;
  }
  const reason = REFUSED[frame.code]?.(frame) || `Not sent: ${frame.message || frame.code}`;
  if (!stage.failLine(clientId, reason)) stage.setChatState(reason, "error");
  if (frame.code === "not_live" && watching && !watching.over) {
    rooms.delete(watching.room.id);
    endWatching("ended");
  }
  return true;
}
