// The chat view: groups and invitations on the left, the selected group's
// messages in the middle, its members on the right. History comes over
// REST; everything live (and what is sent) goes over the WebSocket.

import { api } from "./api.js";
import {
  forgetComposer, initComposer, replyTo, resetComposer, restoreDraft,
} from "./composer.js";
import {
  callCount, forgetCallGroup, initCalls, renameCallGroup, showCallGroup, startCalls, stopCalls,
} from "./call.js";
import { initLive, isWatchingLive, leaveLive, startLive, stopLive } from "./live.js";
import {
  clearMembers, forgetMembers, initMembers, isLeaving, memberCount, membersPresenceChanged,
  reloadMembers, renderMembers, showMembers,
} from "./members.js";
import { initPeople } from "./people.js";
import {
  isReady, onFrame, onLifecycle, onUnclaimedError, readyCount, send, startRealtime, stopRealtime,
} from "./realtime.js";
import { mentionedUsernames } from "./markdown.js";
import {
  arrangeList, fillMessage, fillPending, highlightMessage, initMessageView, insertBySeq,
  messageNode, newMessageNode, startEditing,
} from "./message-view.js";
import { initNotifications, notifyMessage } from "./notifications.js";
import { $, el, formValues, notify, randomId } from "./ui.js";
import {
  avatarElement, displayName, getUser, knownUser, rememberUser, withName,
} from "./users.js";

const PAGE_SIZE = 50;
const TYPING_SEND_EVERY_MS = 2500; // the server drops repeats within 2 s
const TYPING_SHOWN_MS = 5000;
const NEAR_BOTTOM_PX = 60;
// Looking for a message further back (a search result, a quoted message):
// pages of this size, at most this many.
const JUMP_PAGE_SIZE = 200;
const JUMP_MAX_PAGES = 10;

let hooks = { onSessionEnded() {} };
let state = null;

function freshState(me) {
  return {
    me,
    groups: new Map(), // id → group as GET /groups gives it
    invitations: new Map(),
    selectedId: null,
    conv: null, // the selected group's messages and members
    pending: new Map(), // client_id → a message not yet acknowledged
    presence: new Map(), // user id → true/false, once known
    typing: new Map(), // group id → Map(user id → timer)
    syncing: new Set(), // group ids with a sync under way
    refreshTimers: new Map(),
    // group id → how many group.updated frames came: a GET /groups answer
    // read before one of them must not put the old name or rights back.
    groupChanges: new Map(),
    autoSelect: null, // a group to open as soon as it is known
    lastTypingSent: 0,
    visible: false,
  };
}

// -- names ------------------------------------------------------------------

function groupTitle(group) {
  if (group.kind !== "direct") return group.name;
  return group.peer && knownUser(group.peer) ? displayName(knownUser(group.peer)) : "Direct message";
}

// -- start and stop -----------------------------------------------------------

export function initChat(options) {
  hooks = options;
  $("#new-group-form").addEventListener("submit", onNewGroup);
  initComposer({
    groupId: () => state?.conv?.groupId ?? null,
    send: submitComposer,
    typing: sendTyping,
    editLast: editLastMessage,
    me: () => state?.me,
  });
  initMessageView({
    me: () => state?.me,
    may,
    latest: (messageId) => state?.conv?.messages.get(messageId),
    onReply: (message) => replyTo(message),
    onJump: (messageId) => {
      const conv = state?.conv;
      if (conv) jumpToMessage(conv, messageId).catch((error) => notify(error.message, "error"));
    },
    onEdited: (message) => {
      const conv = state?.conv;
      if (conv?.groupId === message.group_id && conv.messages.has(message.id)) upsertMessage(conv, message);
    },
    onDeleted: (message) => {
      if (state?.conv?.groupId === message.group_id) removeMessage(state.conv, message.id);
    },
    // A picture loaded and pushed the list up: who was reading the newest
    // messages still is.
    onGrew: (grownBy) => {
      const scroller = $("#message-scroller");
      if (scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX + grownBy) {
        scrollToBottom();
      }
    },
  });
  initNotifications({ openConversation });
  $("#load-older").addEventListener("click", loadOlder);
  $("#message-scroller").addEventListener("scroll", () => maybeMarkRead(), { passive: true });
  $("#members-toggle").addEventListener("click", () => toggleMembers());
  $("#members-close").addEventListener("click", () => $("#chat-view").classList.remove("members-over"));
  initMembers({
    signedIn: () => Boolean(state),
    me: () => state.me,
    group: (groupId) => state.groups.get(groupId),
    groupTitle,
    presenceOf: presenceClass,
    learnPresence: updatePresence,
    onMembersChanged: (groupId) => {
      if (state.conv?.groupId === groupId) renderConversationHeader();
    },
    onOwnRole,
    onGroupFetched,
    onLeft: (groupId) => {
      forgetGroup(groupId);
      renderGroups();
    },
  });
  initPeople({
    me: () => state?.me,
    // Known for oneself and for people met in a group or a direct
    // conversation; null for the rest (the server tells no one else's).
    presenceOf: (userId) => (state && (userId === state.me.id || state.presence.has(userId))
      ? presenceClass(userId) : null),
    openConversation,
    directWith: (userId) => [...(state?.groups.values() || [])]
      .find((group) => group.kind === "direct" && group.peer === userId)?.id,
  });
  document.addEventListener("visibilitychange", () => maybeMarkRead());
  window.addEventListener("focus", () => maybeMarkRead());
  registerFrames();
  initCalls({
    send,
    callTitleOf: (groupId) => {
      const group = state?.groups.get(groupId);
      if (!group) return "Call";
      return group.kind === "direct" ? `Call with ${groupTitle(group)}` : `Call in #${group.name}`;
    },
    onRosterChange: () => {
      if (state) renderGroups();
    },
  });
  initLive({
    send,
    // A live room took the conversation's place, or gave it back: the
    // group list shows which is open, and what is on screen now is read.
    onViewChange: () => {
      if (!state) return;
      renderGroups();
      maybeMarkRead();
    },
  });
}

export async function startChat(me) {
  if (state && state.me.id === me.id) {
    state.me = me;
    rememberUser(me);
    return;
  }
  stopChat();
  state = freshState(me);
  rememberUser(me);
  startCalls(me);
  startLive(me);
  const mine = state;
  try {
    await Promise.all([refreshGroups(), refreshInvitations()]);
  } catch (error) {
    notify(error.message, "error");
  }
  if (state !== mine) return; // signed out meanwhile
  const stored = localStorage.getItem(lastGroupKey());
  const first = stored && state.groups.has(stored) ? stored : sortedGroups()[0]?.id;
  if (first) selectGroup(first);
  else renderConversation();
  startRealtime();
}

export function stopChat() {
  if (!state) return;
  forgetComposer();
  stopCalls(); // while the socket can still say so
  stopLive();
  stopRealtime();
  for (const timers of state.typing.values()) for (const timer of timers.values()) clearTimeout(timer);
  for (const timer of state.refreshTimers.values()) clearTimeout(timer);
  state = null;
  $("#group-list").replaceChildren();
  $("#direct-list").replaceChildren();
  $("#invitation-list").replaceChildren();
  $("#message-list").replaceChildren();
  forgetMembers();
  $("#connection-banner").hidden = true;
}

export function setChatVisible(visible) {
  if (!state) return;
  state.visible = visible;
  if (visible) maybeMarkRead();
}

// -- what other views ask of the chat -------------------------------------------

// Opens a conversation the person belongs to (a search result, a new direct
// message): switches to the chat view and selects it once it is known.
export function openConversation(groupId) {
  if (!state) return;
  if (location.hash !== "#chat" && location.hash !== "") location.hash = "#chat";
  leaveLive();
  if (state.groups.has(groupId)) selectGroup(groupId);
  else {
    state.autoSelect = groupId;
    refreshGroups().catch((error) => notify(error.message, "error"));
  }
}

// Shows one message in its conversation (a search result): the
// conversation opens at its newest messages as always (so catching up stays
// right), then older pages are read until the message is there.
export function openMessage(groupId, messageId, seq) {
  if (!state) return;
  const conv = state.conv;
  if (conv?.groupId === groupId && conv.loaded) {
    openConversation(groupId);
    jumpToMessage(conv, messageId, seq).catch((error) => notify(error.message, "error"));
    return;
  }
  state.jump = { groupId, messageId, seq };
  openConversation(groupId);
}

async function jumpToMessage(conv, messageId, seq = undefined) {
  for (let pages = 0; pages < JUMP_MAX_PAGES && !conv.messages.has(messageId); pages += 1) {
    const oldest = Math.min(...[...conv.messages.values()].map((m) => m.seq));
    if (!conv.nextCursor || (seq !== undefined && oldest <= seq)) break;
    await loadHistory(conv, conv.nextCursor, JUMP_PAGE_SIZE);
    if (state?.conv !== conv) return;
  }
  if (!highlightMessage(messageId)) {
    notify(conv.deleted.has(messageId) || !conv.nextCursor
      ? "That message is no longer there."
      : "That message is further back: use “Load older messages”.", "error");
  }
}

// What the viewer may do with a message: the group's permissions, from the
// server's rights table; before the server says, what roles allowed so far.
function may(action, message) {
  const group = state?.groups.get(message.group_id);
  if (!group) return false;
  if (Array.isArray(group.permissions)) return group.permissions.includes(action);
  const manager = group.kind === "group" && (group.role === "owner" || group.role === "admin");
  const allowed = {
    post: true, react: true, edit_own_message: true, delete_own_message: true,
    delete_others_message: manager,
  };
  return allowed[action] ?? false;
}

function lastGroupKey() {
  return `gortc:last-group:${state.me.id}`;
}

// -- the socket -------------------------------------------------------------

function registerFrames() {
  const live = (handler) => (frame) => {
    if (state) handler(frame);
  };
  onLifecycle("ready", live(onSocketReady));
  onLifecycle("down", live(onSocketDown));
  onLifecycle("retry", live(onSocketRetry));
  onLifecycle("sessionEnded", live(() => {
    stopChat();
    hooks.onSessionEnded();
  }));
  const frames = {
    "message.ack": onAck,
    "message.created": (frame) => onMessageCreated(frame.message),
    "message.updated": (frame) => onMessageUpdated(frame.message),
    "message.deleted": onMessageDeleted,
    "sync.done": onSyncDone,
    "sync.reset": onSyncReset,
    typing: onTyping,
    "read.updated": onReadUpdated,
    presence: onPresence,
    "group.joined": (frame) => onGroupJoined(frame.group),
    "group.updated": (frame) => onGroupUpdated(frame.group),
    "group.left": (frame) => onGroupLeft(frame.group_id),
    "invitation.created": (frame) => onInvitation(frame.invitation),
  };
  for (const [type, handler] of Object.entries(frames)) onFrame(type, live(handler));
  onUnclaimedError(live(onErrorFrame));
}

function onSocketReady() {
  $("#connection-banner").hidden = true;
  // Whatever changed while we were away: groups, unread counts, invitations.
  refreshGroups().catch(() => {});
  refreshInvitations().catch(() => {});
  const conv = state.conv;
  if (conv?.loaded) startSync(conv.groupId);
  // Sent before the connection dropped, maybe stored: sending again with the
  // same client_id is safe, the server answers with the stored message.
  for (const pending of state.pending.values()) {
    if (pending.status === "queued" || pending.status === "unconfirmed") transmit(pending);
  }
  if (conv && readyCount() > 1) reloadMembers();
  else if (conv) renderMembers(); // my own dot
  maybeMarkRead();
}

function onSocketDown() {
  $("#connection-banner").hidden = false;
  $("#connection-banner").textContent = readyCount() > 0
    ? "Connection lost. Reconnecting…"
    : "Cannot reach the server. Trying again…";
  for (const pending of state.pending.values()) {
    if (pending.status === "sent") setPendingStatus(pending, "unconfirmed");
  }
  for (const groupId of [...state.typing.keys()]) clearTyping(groupId);
  state.syncing.clear();
  if (state.conv) renderMembers();
}

async function onSocketRetry(attempt) {
  // A socket that never opens may mean the sign-in is over (the handshake's
  // 401 does not reach scripts): ask the REST API, which says so plainly.
  if (attempt < 2) return;
  try {
    await api("GET", "/api/v1/users/me");
  } catch (error) {
    if (error.status === 401 && state) {
      stopChat();
      hooks.onSessionEnded();
    }
  }
}

function startSync(groupId) {
  const conv = state.conv?.groupId === groupId && state.conv.loaded ? state.conv : null;
  // The open conversation catches up by change, which also brings edits and
  // deletions of the messages on screen; others only need what is new.
  const after = conv
    ? { after_change: conv.lastChange }
    : { after_seq: state.groups.get(groupId)?.last_seq ?? 0 };
  state.syncing.add(groupId);
  send({ type: "sync", group_id: groupId, ...after, client_id: `sync:${groupId}` });
}

// -- groups and invitations ---------------------------------------------------

async function refreshGroups() {
  const mine = state;
  const changesBefore = new Map(state.groupChanges);
  const seen = new Map();
  let cursor = null;
  do {
    const query = cursor ? `?before=${encodeURIComponent(cursor)}` : "";
    const page = await api("GET", `/api/v1/groups${query}`);
    for (const group of page.items) seen.set(group.id, group);
    cursor = page.next_cursor;
  } while (cursor);
  if (state !== mine) return;
  for (const id of [...state.groups.keys()]) {
    if (!seen.has(id)) forgetGroup(id);
  }
  // Whether each direct peer is online now: the list is a snapshot.
  updatePresence([...seen.values()]
    .filter((g) => g.peer && typeof g.peer_online === "boolean")
    .map((g) => [g.peer, g.peer_online]));
  for (const group of seen.values()) {
    const known = state.groups.get(group.id);
    // A read marker sent meanwhile is newer than this answer.
    if (known && known.read_seq > group.read_seq) {
      group.read_seq = known.read_seq;
      group.unread = known.unread;
      group.unread_mentions = known.unread_mentions;
    }
    // A group.updated that came while this list was on its way is newer.
    if (known && state.groupChanges.get(group.id) !== changesBefore.get(group.id)) {
      keepLiveFields(group, known);
    }
    state.groups.set(group.id, group);
    if (group.id === state.conv?.groupId) state.conv.role = group.role;
  }
  await resolvePeers();
  if (state !== mine) return;
  renderGroups();
  if (state.conv) renderConversationHeader();
  if (state.autoSelect && state.groups.has(state.autoSelect)) selectGroup(state.autoSelect);
}

// What group.updated frames carry: kept over an answer read before them.
function keepLiveFields(group, known) {
  for (const field of ["name", "owner_id", "permissions", "role"]) {
    if (known[field] !== undefined) group[field] = known[field];
  }
}

// Direct conversations are shown under the other person's name.
async function resolvePeers() {
  const peers = [...state.groups.values()].filter((g) => g.peer && !knownUser(g.peer));
  await Promise.all(peers.map((g) => getUser(g.peer)));
}

function refreshGroupSoon(groupId) {
  clearTimeout(state.refreshTimers.get(groupId));
  state.refreshTimers.set(groupId, setTimeout(async () => {
    const mine = state;
    const changes = state.groupChanges.get(groupId);
    try {
      const group = await api("GET", `/api/v1/groups/${encodeURIComponent(groupId)}`);
      if (state !== mine || !state.groups.has(groupId)) return;
      // Read before a group.updated that has come since: that frame's
      // name and rights are the newer ones.
      if (state.groupChanges.get(groupId) !== changes) keepLiveFields(group, state.groups.get(groupId));
      state.groups.set(groupId, group);
      renderGroups();
      if (state.conv?.groupId === groupId) refillMessages();
    } catch {
      // Gone meanwhile: group.left says so.
    }
  }, 300));
}

function sortedGroups() {
  const title = (g) => groupTitle(g).toLocaleLowerCase();
  return [...state.groups.values()].sort((a, b) => title(a).localeCompare(title(b)));
}

function renderGroups() {
  const groups = sortedGroups();
  const item = (group) => {
    const direct = group.kind === "direct";
    // While a live room is on screen, no conversation is.
    const selected = group.id === state.selectedId && !isWatchingLive();
    const marker = direct
      ? el("span", { className: "peer-marker", "aria-hidden": "true" },
        avatarElement(group.peer, { size: "small" }),
        el("span", { className: `dot ${presenceClass(group.peer)}` }))
      : el("span", { className: "hash", "aria-hidden": "true", text: "#" });
    const badge = group.unread > 0 && !selected
      ? el("span", {
        className: "badge", text: group.unread > 99 ? "99+" : String(group.unread),
        "aria-label": `${group.unread} unread`,
      })
      : null;
    const mentions = group.unread_mentions > 0 && !selected
      ? el("span", {
        className: "mention-badge", text: `@${group.unread_mentions > 9 ? "9+" : group.unread_mentions}`,
        title: "Mentions of you", "aria-label": `${group.unread_mentions} mention${group.unread_mentions === 1 ? "" : "s"} of you`,
      })
      : null;
    const inCall = callCount(group.id);
    const call = inCall > 0
      ? el("span", {
        className: "call-pill", text: String(inCall),
        title: `Call in progress · ${inCall}`, "aria-label": `call in progress, ${inCall} in it`,
      })
      : null;
    return el("li", {},
      el("button", {
        type: "button",
        className: `conversation-link${group.unread > 0 && !selected ? " has-unread" : ""}`,
        dataset: { id: group.id },
        "aria-current": selected ? "true" : null,
        onclick: () => {
          leaveLive();
          selectGroup(group.id);
        },
      }, marker, el("span", { className: "name", text: groupTitle(group) }), call, mentions, badge));
  };
  const plain = groups.filter((g) => g.kind !== "direct");
  const direct = groups.filter((g) => g.kind === "direct");
  $("#group-list").replaceChildren(...plain.map(item));
  $("#direct-list").replaceChildren(...direct.map(item));
  $("#no-groups").hidden = plain.length > 0;
  const unread = groups.reduce((sum, g) => sum + (g.unread > 0 ? g.unread : 0), 0);
  document.title = unread > 0 ? `(${unread}) gortc` : "gortc";
}

async function refreshInvitations() {
  const mine = state;
  const page = await api("GET", "/api/v1/invitations");
  if (state !== mine) return;
  state.invitations = new Map(page.items.map((invitation) => [invitation.id, invitation]));
  renderInvitations();
}

function renderInvitations() {
  const items = [...state.invitations.values()].map((invitation) => {
    const from = el("small", {});
    if (invitation.inviter_id) withName(invitation.inviter_id, (name) => { from.textContent = `from ${name}`; });
    const answer = (verb) => async (event) => {
      event.currentTarget.disabled = true;
      try {
        await api("POST", `/api/v1/invitations/${encodeURIComponent(invitation.id)}/${verb}`);
        state.invitations.delete(invitation.id);
        renderInvitations();
        if (verb === "accept") {
          state.autoSelect = invitation.group_id;
          await refreshGroups();
        }
      } catch (error) {
        notify(error.message, "error");
        event.target.disabled = false;
      }
    };
    return el("li", { className: "invitation" },
      el("div", {}, el("strong", { text: invitation.group_name }), " ", from),
      el("div", { className: "buttons" },
        el("button", { type: "button", text: "Accept", onclick: answer("accept") }),
        el("button", { type: "button", className: "secondary", text: "Decline", onclick: answer("decline") })));
  });
  $("#invitation-list").replaceChildren(...items);
  $("#invitations").hidden = items.length === 0;
}

function onInvitation(invitation) {
  state.invitations.set(invitation.id, invitation);
  renderInvitations();
}

function onGroupJoined(group) {
  const known = state.groups.get(group.id);
  state.groups.set(group.id, { ...known, ...group });
  const ready = group.peer && !knownUser(group.peer) ? resolvePeers() : Promise.resolve();
  ready.then(() => {
    if (!state) return;
    renderGroups();
    if (state.autoSelect === group.id) selectGroup(group.id);
  });
}

function onGroupUpdated(info) {
  const group = state.groups.get(info.id);
  if (!group) return;
  state.groupChanges.set(info.id, (state.groupChanges.get(info.id) || 0) + 1);
  Object.assign(group, { name: info.name, owner_id: info.owner_id });
  // Sent to a member whose role changed, it carries what they may do now.
  const rightsChanged = Array.isArray(info.permissions)
    && info.permissions.join() !== (group.permissions || []).join();
  if (Array.isArray(info.permissions)) group.permissions = info.permissions;
  if (info.role) group.role = info.role;
  renderGroups();
  renameCallGroup(info.id);
  if (state.conv?.groupId === info.id) {
    renderConversationHeader();
    if (rightsChanged) refillMessages();
  }
}

function onGroupLeft(groupId) {
  const group = state.groups.get(groupId);
  if (!group) return;
  if (!isLeaving(groupId)) notify(`You are no longer in “${groupTitle(group)}”.`, "error");
  forgetGroup(groupId);
  renderGroups();
}

function forgetGroup(groupId) {
  state.groups.delete(groupId);
  clearTimeout(state.refreshTimers.get(groupId));
  state.refreshTimers.delete(groupId);
  forgetCallGroup(groupId);
  clearTyping(groupId);
  for (const [clientId, pending] of state.pending) {
    if (pending.groupId === groupId) state.pending.delete(clientId);
  }
  if (state.selectedId === groupId) {
    state.selectedId = null;
    state.conv = null;
    localStorage.removeItem(lastGroupKey());
    renderConversation();
  }
}

async function onNewGroup(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const group = await api("POST", "/api/v1/groups", { name: formValues(form).name || "" });
    form.reset();
    state.groups.set(group.id, { ...state.groups.get(group.id), ...group });
    leaveLive();
    renderGroups();
    selectGroup(group.id);
  } catch (error) {
    notify(error.message, "error");
  } finally {
    button.disabled = false;
  }
}

// -- the selected group --------------------------------------------------------

function selectGroup(groupId) {
  if (state.autoSelect === groupId) state.autoSelect = null;
  if (state.selectedId === groupId && state.conv) {
    $("#composer textarea").focus();
    return;
  }
  state.selectedId = groupId;
  localStorage.setItem(lastGroupKey(), groupId);
  state.conv = {
    groupId,
    messages: new Map(), // id → message
    deleted: new Set(),
    lastSeq: 0,
    lastChange: 0, // every change up to this one is on screen (see noteChange)
    nextCursor: null,
    loaded: false,
    role: state.groups.get(groupId)?.role,
    // The first unread message when it opened: the "New messages" divider.
    newFrom: state.groups.get(groupId)?.unread > 0 ? state.groups.get(groupId).read_seq + 1 : null,
  };
  resetComposer();
  renderConversation();
  renderGroups();
  showCallGroup(groupId);
  const conv = state.conv;
  showMembers(groupId);
  loadHistory(conv).catch((error) => notify(error.message, "error"));
  $("#composer textarea").focus();
}

function renderConversation() {
  const conv = state?.conv;
  $("#conversation-empty").hidden = Boolean(conv);
  $("#conversation-main").hidden = !conv;
  $("#members-panel").hidden = !conv || !membersWanted();
  $("#message-list").replaceChildren();
  clearMembers();
  $("#load-older").hidden = true;
  $("#empty-history").hidden = true;
  $("#typing-indicator").textContent = "";
  if (!conv) return;
  renderConversationHeader();
  for (const pending of state.pending.values()) {
    if (pending.groupId === conv.groupId) $("#message-list").append(pending.node);
  }
}

function renderConversationHeader() {
  const conv = state.conv;
  const group = state.groups.get(conv.groupId);
  if (!group) return;
  const direct = group.kind === "direct";
  $("#conversation-title").textContent = groupTitle(group);
  $("#conversation-kind").textContent = direct ? "@" : "#";
  $("#conversation-subtitle").textContent = direct
    ? "Direct message"
    : `${memberCount() || "…"} member${memberCount() === 1 ? "" : "s"}`;
  const title = groupTitle(group);
  // A placeholder wraps rather than ending in "…": keep it to the one line
  // the empty box has (a phone's is about twenty characters wide).
  const room = PHONE.matches ? 14 : 32;
  const short = title.length > room ? `${title.slice(0, room - 2)}…` : title;
  $("#composer textarea").placeholder = `Message ${direct ? "" : "#"}${short}`;
  $("#members-toggle").setAttribute("aria-pressed", String(membersWanted()));
}

function membersWanted() {
  return localStorage.getItem("gortc:members-panel") !== "closed";
}

const NARROW = window.matchMedia("(max-width: 900px)");
const PHONE = window.matchMedia("(max-width: 700px)");

function toggleMembers() {
  if (NARROW.matches) {
    // No room beside the messages: the panel slides over them instead.
    $("#chat-view").classList.toggle("members-over");
    $("#members-panel").hidden = !state?.conv;
    return;
  }
  const open = !membersWanted();
  localStorage.setItem("gortc:members-panel", open ? "open" : "closed");
  $("#members-panel").hidden = !open || !state?.conv;
  $("#members-toggle").setAttribute("aria-pressed", String(open));
}

async function loadHistory(conv, before = null, limit = PAGE_SIZE) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (before !== null) query.set("before", before);
  const startedIn = readyCount();
  const page = await api("GET", `/api/v1/groups/${encodeURIComponent(conv.groupId)}/messages?${query}`);
  if (state?.conv !== conv) return;
  const scroller = $("#message-scroller");
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  // A page of history is not news: the live region stays quiet while it
  // goes in (only messages arriving live are read out).
  const list = $("#message-list");
  list.setAttribute("aria-busy", "true");
  for (const message of page.items) upsertMessage(conv, message);
  setTimeout(() => list.removeAttribute("aria-busy"), 0);
  if (before === null) {
    // The newest page shows every change up to its newest one (older
    // pages, read later, may be newer than what the socket has told us).
    for (const message of page.items) conv.lastChange = Math.max(conv.lastChange, message.change);
  }
  conv.nextCursor = page.next_cursor;
  $("#load-older").hidden = !conv.nextCursor;
  $("#empty-history").hidden = conv.messages.size > 0 || Boolean(conv.nextCursor);
  if (before === null) {
    conv.loaded = true;
    scrollToBottom();
    // The socket came up after this page was read: fetch what came between.
    if (readyCount() !== startedIn && isReady()) startSync(conv.groupId);
    maybeMarkRead();
    const jump = state.jump;
    if (jump?.groupId === conv.groupId) {
      state.jump = null;
      await jumpToMessage(conv, jump.messageId, jump.seq);
    }
  } else {
    scroller.scrollTop = scroller.scrollHeight - fromBottom; // keep the reader's place
  }
}

async function loadOlder() {
  const conv = state.conv;
  if (!conv?.nextCursor) return;
  const button = $("#load-older");
  button.disabled = true;
  try {
    await loadHistory(conv, conv.nextCursor);
  } catch (error) {
    notify(error.message, "error");
  } finally {
    button.disabled = false;
  }
}

// The group as the server gives it now, asked for when the viewer's role
// changed: their rights (permissions) come with it.
function onGroupFetched(fresh) {
  const group = state.groups.get(fresh.id);
  if (!group) return;
  // Not the read marker or unread count: ours may be newer than this answer.
  Object.assign(group, {
    name: fresh.name, owner_id: fresh.owner_id, role: fresh.role, permissions: fresh.permissions,
  });
  renderGroups();
  if (state.conv?.groupId !== fresh.id) return;
  state.conv.role = fresh.role;
  renderConversationHeader();
  refillMessages(); // what may be done to messages follows the rights
}

// The viewer's role in a group changed (or became known with its members):
// what they may do to messages changes with it.
function onOwnRole(groupId, role) {
  const group = state.groups.get(groupId);
  if (group) group.role = role;
  if (state.conv?.groupId !== groupId || state.conv.role === role) return;
  state.conv.role = role;
  renderConversationHeader();
  refillMessages();
  refreshGroupSoon(groupId); // its permissions changed with the role
}

// -- presence and typing -------------------------------------------------------

function presenceClass(userId) {
  if (userId === state.me.id) return isReady() ? "online" : "offline";
  return state.presence.get(userId) ? "online" : "offline";
}

// One frame per group and interval: who came online and who went offline
// since the last one. Presence is per user, so it holds for every group and
// direct conversation they are in.
function onPresence({ online = [], offline = [] }) {
  updatePresence([
    ...online.map((userId) => [userId, true]),
    ...offline.map((userId) => [userId, false]),
  ]);
}

// Records [user id, online] pairs and renders once for all of them: a frame
// may name hundreds of people.
function updatePresence(entries) {
  const changed = new Set();
  for (const [userId, online] of entries) {
    if (state.presence.get(userId) === online) continue;
    state.presence.set(userId, online);
    changed.add(userId);
  }
  if (changed.size === 0) return;
  if (state.conv) membersPresenceChanged(changed);
  if ([...state.groups.values()].some((g) => changed.has(g.peer))) renderGroups();
}

// The member and group lists say who is online when they load, frames say
// what changed since; someone not covered by either (not yet loaded) but
// seen typing or sending live is online until told otherwise.
function seenActive(userId) {
  if (userId && userId !== state.me.id && !state.presence.has(userId)) {
    updatePresence([[userId, true]]);
  }
}

function sendTyping() {
  const conv = state?.conv;
  if (!conv || !$("#composer textarea").value.trim()) return;
  const now = Date.now();
  if (now - state.lastTypingSent < TYPING_SEND_EVERY_MS) return;
  if (send({ type: "typing", group_id: conv.groupId, client_id: "typing" })) {
    state.lastTypingSent = now;
  }
}

function onTyping({ group_id: groupId, user_id: userId }) {
  if (userId === state.me.id) return;
  seenActive(userId);
  const timers = state.typing.get(groupId) || new Map();
  state.typing.set(groupId, timers);
  clearTimeout(timers.get(userId));
  timers.set(userId, setTimeout(() => stopTyping(groupId, userId), TYPING_SHOWN_MS));
  renderTyping();
}

function stopTyping(groupId, userId) {
  const timers = state?.typing.get(groupId);
  if (!timers?.has(userId)) return;
  clearTimeout(timers.get(userId));
  timers.delete(userId);
  renderTyping();
}

function clearTyping(groupId) {
  const timers = state.typing.get(groupId);
  if (!timers) return;
  for (const timer of timers.values()) clearTimeout(timer);
  state.typing.delete(groupId);
  renderTyping();
}

function renderTyping() {
  const indicator = $("#typing-indicator");
  const typists = [...(state.typing.get(state.selectedId)?.keys() || [])];
  const shown = typists.map((id) => (knownUser(id) ? displayName(knownUser(id)) : "Someone"));
  if (shown.length === 0) indicator.textContent = "";
  else if (shown.length === 1) indicator.textContent = `${shown[0]} is typing…`;
  else if (shown.length === 2) indicator.textContent = `${shown[0]} and ${shown[1]} are typing…`;
  else indicator.textContent = "Several people are typing…";
}

// -- messages -----------------------------------------------------------------

function upsertMessage(conv, message) {
  if (conv.deleted.has(message.id)) return;
  conv.lastSeq = Math.max(conv.lastSeq, message.seq);
  const known = conv.messages.get(message.id);
  // An edit may arrive before the page that still holds the old text.
  if (known && known.change > message.change) return;
  conv.messages.set(message.id, message);
  $("#empty-history").hidden = true;
  const existing = messageNode(message.id);
  if (existing) {
    if (!existing.classList.contains("editing")) fillMessage(existing, message);
  } else {
    const node = newMessageNode(message);
    fillMessage(node, message);
    insertBySeq(node, message.seq);
  }
  // Replies show what they answer as it is now.
  for (const other of conv.messages.values()) {
    if (other.reply_to?.id !== message.id || other.reply_to.body === message.body) continue;
    other.reply_to = { ...other.reply_to, body: message.body };
    const node = messageNode(other.id);
    if (node && !node.classList.contains("editing")) fillMessage(node, other);
  }
  arrangeSoon();
}

// Separators and grouping, drawn once after a burst of changes.
let arrangeQueued = false;
function arrangeSoon() {
  if (arrangeQueued) return;
  arrangeQueued = true;
  queueMicrotask(() => {
    arrangeQueued = false;
    if (state?.conv) arrangeList(state.conv.newFrom);
  });
}

function refillMessages() {
  const conv = state.conv;
  if (!conv) return;
  for (const node of $("#message-list").querySelectorAll("li.message:not(.pending):not(.editing)")) {
    const message = conv.messages.get(node.dataset.id);
    if (message) fillMessage(node, message);
  }
}

function removeMessage(conv, messageId) {
  conv.deleted.add(messageId);
  conv.messages.delete(messageId);
  messageNode(messageId)?.remove();
  for (const other of conv.messages.values()) {
    if (other.reply_to?.id !== messageId) continue;
    other.reply_to = { ...other.reply_to, body: "", deleted: true };
    const node = messageNode(other.id);
    if (node && !node.classList.contains("editing")) fillMessage(node, other);
  }
  arrangeSoon();
}

// Up in the empty composer: my newest message on screen, in an edit box.
function editLastMessage() {
  const conv = state?.conv;
  if (!conv) return false;
  let last = null;
  for (const message of conv.messages.values()) {
    if (message.sender_id === state.me.id && (!last || message.seq > last.seq)) last = message;
  }
  if (!last || !may("edit_own_message", last)) return false;
  startEditing(last.id);
  messageNode(last.id)?.scrollIntoView({ block: "nearest" });
  return true;
}

function onMessageCreated(message) {
  const groupId = message.group_id;
  const group = state.groups.get(groupId);
  const replay = state.syncing.has(groupId);
  if (message.sender_id === state.me.id) {
    matchPending(message);
  } else if (!replay) {
    seenActive(message.sender_id);
    stopTyping(groupId, message.sender_id);
  }
  if (group) {
    const fresh = message.seq > group.last_seq;
    group.last_seq = Math.max(group.last_seq, message.seq);
    if (fresh && !replay && message.sender_id !== state.me.id && message.seq > group.read_seq) {
      group.unread += 1;
      const mentioned = mentionedUsernames(message.body).has(state.me.username.toLowerCase());
      if (mentioned) group.unread_mentions = (group.unread_mentions || 0) + 1;
      if (mentioned || group.kind === "direct") {
        withName(message.sender_id, (name) => {
          if (name === "…") return;
          notifyMessage({
            groupId,
            title: group.kind === "direct" ? name : `${name} in #${group.name}`,
            body: message.body,
          });
        });
      }
    }
  } else {
    refreshGroups().catch(() => {}); // a direct conversation just begun
  }
  const conv = state.conv;
  if (conv?.groupId === groupId) {
    const stick = nearBottom() || message.sender_id === state.me.id;
    const missed = noteChange(conv, message.change, replay);
    const gap = missed || (conv.loaded && !replay && message.seq > conv.lastSeq + 1);
    const after = conv.lastSeq;
    upsertMessage(conv, message);
    if (gap && isReady()) {
      // Something was missed on the way: ask for it.
      conv.lastSeq = after;
      startSync(groupId);
    }
    if (stick) scrollToBottom();
    maybeMarkRead();
  }
  renderGroups();
}

function onMessageUpdated(message) {
  const conv = state.conv;
  if (conv?.groupId !== message.group_id) return;
  const missed = noteChange(conv, message.change, state.syncing.has(message.group_id));
  const stick = nearBottom();
  if (conv.messages.has(message.id)) upsertMessage(conv, message);
  if (stick) scrollToBottom(); // a reaction on the last message stays in sight
  if (missed && isReady()) startSync(conv.groupId);
}

function onMessageDeleted({ group_id: groupId, message_id: messageId, seq, change }) {
  const conv = state.conv;
  if (conv?.groupId === groupId) {
    const missed = noteChange(conv, change, state.syncing.has(groupId));
    removeMessage(conv, messageId);
    if (missed && isReady()) startSync(groupId);
  }
  const group = state.groups.get(groupId);
  if (group && seq > group.read_seq && group.unread > 0) refreshGroupSoon(groupId);
}

// Every creation, edit and deletion in a group takes the next change
// number, so one that jumps ahead of what is on screen means something was
// missed: true then, and lastChange stays put for the sync that follows.
// Replayed ones may come in any order with live ones; only sync.done says
// when all have arrived.
function noteChange(conv, change, replay) {
  const missed = conv.loaded && !replay && change > conv.lastChange + 1;
  if (!missed) conv.lastChange = Math.max(conv.lastChange, change);
  return missed;
}

function onSyncDone({ group_id: groupId, last_seq: lastSeq, last_change: lastChange }) {
  state.syncing.delete(groupId);
  const group = state.groups.get(groupId);
  if (group) group.last_seq = Math.max(group.last_seq, lastSeq);
  if (state.conv?.groupId === groupId) {
    state.conv.lastSeq = Math.max(state.conv.lastSeq, lastSeq);
    // Only a sync by change reports it: one by seq says nothing of edits.
    if (lastChange !== undefined) state.conv.lastChange = Math.max(state.conv.lastChange, lastChange);
  }
  failUnconfirmed(groupId);
  maybeMarkRead();
}

function onSyncReset({ group_id: groupId, last_change: lastChange }) {
  state.syncing.delete(groupId);
  failUnconfirmed(groupId);
  refreshGroupSoon(groupId);
  const conv = state.conv;
  if (conv?.groupId !== groupId) return;
  // Too much was missed to replay: start again from the newest page, which
  // is read after this answer and so shows every change up to last_change.
  state.conv = null;
  state.selectedId = null;
  selectGroup(groupId);
  if (lastChange !== undefined) state.conv.lastChange = lastChange;
}

function onReadUpdated({ group_id: groupId, seq }) {
  const group = state.groups.get(groupId);
  if (!group || seq < group.read_seq) return;
  group.read_seq = seq;
  if (seq >= group.last_seq) {
    group.unread = 0;
    group.unread_mentions = 0;
    renderGroups();
  } else {
    refreshGroupSoon(groupId);
  }
}

// -- sending ------------------------------------------------------------------

// What the composer hands over: the text as typed, the files stored for
// it, and the message it answers.
function submitComposer({ body, files = [], replyTo: answered = null }) {
  const conv = state?.conv;
  if (!conv) return;
  const pending = {
    clientId: randomId(), groupId: conv.groupId, body, files, replyTo: answered,
    status: "queued", node: null, createdAt: Date.now(),
  };
  pending.node = el("li", { className: "message own pending", dataset: { clientId: pending.clientId } });
  state.pending.set(pending.clientId, pending);
  renderPending(pending);
  $("#message-list").append(pending.node);
  $("#empty-history").hidden = true;
  arrangeSoon();
  scrollToBottom();
  transmit(pending);
}

function transmit(pending) {
  const frame = {
    type: "message.send", group_id: pending.groupId, body: pending.body, client_id: pending.clientId,
  };
  if (pending.files.length) frame.file_ids = pending.files.map((file) => file.id);
  if (pending.replyTo) frame.reply_to = pending.replyTo.id;
  setPendingStatus(pending, send(frame) ? "sent" : "queued");
}

const PENDING_TEXT = {
  queued: "Waiting for the connection…",
  sent: "Sending…",
  unconfirmed: "Checking whether it was sent…",
  failed: "Not sent.",
};

function setPendingStatus(pending, status) {
  pending.status = status;
  renderPending(pending);
}

function renderPending(pending) {
  const node = pending.node;
  node.classList.toggle("failed", pending.status === "failed");
  const buttons = pending.status === "failed"
    ? [
      el("button", { type: "button", className: "quiet", text: "Retry", onclick: () => transmit(pending) }),
      el("button", {
        type: "button", className: "quiet", text: "Discard",
        onclick: () => {
          state.pending.delete(pending.clientId);
          node.remove();
          arrangeSoon();
        },
      }),
    ]
    : [];
  fillPending(node, pending, PENDING_TEXT[pending.status], buttons);
}

// The group hears of a message apart from its acknowledgement, and either
// may come first: the first one settles the pending copy. The message
// carries the client_id it was sent with.
function matchPending(message) {
  const pending = state.pending.get(message.client_id);
  if (pending?.groupId === message.group_id) {
    state.pending.delete(message.client_id);
    pending.node.remove();
  }
}

function onAck({ client_id: clientId, message }) {
  const pending = state.pending.get(clientId);
  if (pending) {
    state.pending.delete(clientId);
    pending.node.remove();
  }
  const group = state.groups.get(message.group_id);
  if (group) group.last_seq = Math.max(group.last_seq, message.seq);
  if (state.conv?.groupId === message.group_id) {
    upsertMessage(state.conv, message);
    maybeMarkRead();
  }
}

function failUnconfirmed(groupId) {
  for (const pending of state.pending.values()) {
    if (pending.groupId === groupId && pending.status === "unconfirmed") setPendingStatus(pending, "failed");
  }
}

function onErrorFrame(frame) {
  const clientId = frame.client_id || "";
  if (clientId === "typing" || clientId === "read") return; // background chatter
  if (clientId.startsWith("sync:")) {
    // Most likely the group is gone: the group list will say so.
    const groupId = clientId.slice(5);
    state.syncing.delete(groupId);
    failUnconfirmed(groupId);
    refreshGroups().catch(() => {});
    return;
  }
  const pending = state.pending.get(clientId);
  const message = frame.message || "The server refused that.";
  // Refused as it is (not a passing trouble like a rate limit): it goes
  // back into the composer, if that is free, with the server's reason, to
  // be changed and sent again.
  const refused = frame.status >= 400 && frame.status < 500 && frame.status !== 429;
  if (pending && refused && restoreDraft(pending, message)) {
    state.pending.delete(clientId);
    pending.node.remove();
    arrangeSoon();
    return;
  }
  if (pending) setPendingStatus(pending, "failed");
  // A refused message is told by the composer, where the person is typing.
  notify(message, "error", pending ? $("#composer") : null);
}

// -- reading ------------------------------------------------------------------

function nearBottom() {
  const scroller = $("#message-scroller");
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  const scroller = $("#message-scroller");
  scroller.scrollTop = scroller.scrollHeight;
}

// Moves the read marker once the newest messages are on screen.
function maybeMarkRead() {
  const conv = state?.conv;
  if (!conv?.loaded || !state.visible || document.visibilityState !== "visible") return;
  if (isWatchingLive()) return; // the conversation is hidden behind the live room
  if (!nearBottom() || !isReady()) return;
  const group = state.groups.get(conv.groupId);
  if (!group) return;
  const seq = Math.max(conv.lastSeq, 0);
  if (seq > group.read_seq) {
    if (!send({ type: "read", group_id: conv.groupId, seq, client_id: "read" })) return;
    group.read_seq = seq;
  }
  if ((group.unread !== 0 || group.unread_mentions) && seq >= group.last_seq) {
    group.unread = 0;
    group.unread_mentions = 0;
    renderGroups();
  }
}

