// The live room being watched: its video (a LivePlayer) and its chat beside
// it. It draws what it is told; live.js decides, and talks to the server.

import { LivePlayer } from "./live-player.js";
import { $, el, timeElement } from "./ui.js";

// A room's chat is not stored and a stream may run for hours: only the
// newest lines stay on the page.
const MAX_LINES = 300;
const NEAR_BOTTOM_PX = 40;

const PLAYER_STATES = {
  waiting: "Waiting for the stream…",
  buffering: "Buffering…",
  playing: "",
  muted: "Playing muted: this browser wants a click before it plays sound (use the controls).",
  unsupported: "This browser cannot play live streams.",
  failed: "The stream cannot be played right now. Leave and open it again to retry.",
};

export class LiveStage {
  // onSend(body) → false when the line could not go (the caller says why),
  // onLeave(); withName(userId, apply) as the chat's.
  constructor({ onSend, onLeave, withName }) {
    this.withName = withName;
    this.pending = new Map(); // client_id → our line's node, until it comes back
    this.player = new LivePlayer($("#live-video"), {
      onState: (state) => this.setStatus(PLAYER_STATES[state] ?? ""),
      onEnded: () => this.onPlayerEnded?.(),
    });
    this.onPlayerEnded = null;
    $("#live-leave").addEventListener("click", () => onLeave());
    $("#live-chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("#live-chat-form input");
      const body = input.value.trim();
      if (!body) return;
      if (onSend(body) !== false) input.value = "";
    });
  }

  // Shows the room and starts playing it; onEnded: the playlist ran out.
  show(room, onEnded) {
    this.onPlayerEnded = onEnded;
    this.pending.clear();
    $("#live-chat-lines").replaceChildren();
    $("#live-view").classList.remove("over");
    $("#live-view").hidden = false;
    $("#chat-view").classList.add("watching");
    this.update(room);
    this.setChatState("Joining the chat…");
    this.setChatEnabled(true);
    $("#live-video").controls = true;
    this.player.start(room.hls_url);
  }

  hide() {
    this.player.stop();
    this.onPlayerEnded = null;
    this.pending.clear();
    $("#live-view").hidden = true;
    $("#chat-view").classList.remove("watching");
    $("#live-chat-lines").replaceChildren();
    this.setStatus("");
  }

  // The room's details as the list has them now.
  update(room) {
    $("#live-room-title").textContent = room.title || "Live";
    const streamer = $("#live-room-streamer");
    this.withName(room.user_id, (name) => { streamer.textContent = `${name} (@${room.username})`; });
    $("#live-room-viewers").textContent = viewersText(room.viewers);
  }

  // The stream is over: the picture stops, the reason stays on screen.
  ended(text) {
    this.player.stop();
    this.onPlayerEnded = null;
    $("#live-video").controls = false; // nothing left to play or seek
    $("#live-view").classList.add("over");
    this.setStatus(text);
    this.setChatState("");
    this.setChatEnabled(false);
    this.systemLine(text);
    this.failPending("Not sent: the stream ended.");
  }

  setStatus(text) {
    const status = $("#live-status");
    status.textContent = text;
    status.hidden = !text;
  }

  setChatState(text, kind = "") {
    const line = $("#live-chat-state");
    line.textContent = text;
    line.className = kind;
    line.hidden = !text;
  }

  setChatEnabled(enabled) {
    for (const control of $("#live-chat-form").elements) control.disabled = !enabled;
  }

  // A line from the room (ours too, back from the server).
  addLine({ username, body, sent_at: sentAt, client_id: clientId }, own) {
    const mine = own && clientId ? this.pending.get(clientId) : null;
    const node = el("li", { className: `live-line${own ? " own" : ""}` },
      el("span", { className: "sender", title: `@${username}`, text: username }),
      " ",
      el("span", { className: "body", text: body }),
      " ",
      timeElement(sentAt));
    if (mine) {
      this.pending.delete(clientId);
      mine.replaceWith(node);
      return;
    }
    this.append(node);
  }

  // Ours, shown at once and settled when the server sends it back.
  addPending(clientId, body, name) {
    const node = el("li", { className: "live-line own pending" },
      el("span", { className: "sender", text: name }),
      " ",
      el("span", { className: "body", text: body }),
      " ",
      el("small", { className: "status", text: "sending…" }));
    this.pending.set(clientId, node);
    this.append(node, true);
  }

  failLine(clientId, reason) {
    const node = this.pending.get(clientId);
    if (!node) return false;
    this.pending.delete(clientId);
    node.classList.remove("pending");
    node.classList.add("failed");
    node.querySelector(".status").textContent = reason;
    return true;
  }

  // Lines whose echo will not come now (the connection dropped).
  failPending(reason) {
    for (const clientId of [...this.pending.keys()]) this.failLine(clientId, reason);
  }

  systemLine(text) {
    this.append(el("li", { className: "live-line system", text }));
  }

  append(node, forceScroll = false) {
    const list = $("#live-chat-lines");
    const scroller = $("#live-chat-scroller");
    const stick = forceScroll
      || scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    list.append(node);
    while (list.childElementCount > MAX_LINES) list.firstElementChild.remove();
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }
}

export function viewersText(viewers) {
  const count = Number(viewers) || 0;
  return `${count} watching`;
}
