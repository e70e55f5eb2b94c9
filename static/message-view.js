// How a message looks: its author and time, the message it answers, its
// text as safe markdown with mentions, its attachments, its reactions and
// what the viewer may do with it (reply, react, edit, delete). Also how the
// list reads as a whole: date separators, the "New messages" divider and
// consecutive messages of one author grouped under one name.
//
// chat.js owns the messages (what is loaded, what is live); this module
// only draws them and turns clicks into calls of the hooks it was given.

import { api } from "./api.js";
import { fileBadge } from "./files.js";
import { updateCounter } from "./limits.js";
import { renderMarkdown } from "./markdown.js";
import { openProfileCard } from "./people.js";
import { $, el, notify, timeElement } from "./ui.js";
import { formatSize } from "./uploads.js";
import { avatarElement, withName } from "./users.js";

// The picker's emojis, with the words a screen reader says for each.
export const QUICK_REACTIONS = [
  ["👍", "thumbs up"], ["❤️", "heart"], ["😂", "laughing"], ["🎉", "party"],
  ["😮", "surprised"], ["😢", "sad"], ["🙏", "thank you"], ["👀", "eyes"],
  ["🔥", "fire"], ["✅", "done"], ["👏", "clapping"], ["🤔", "thinking"],
];

const GROUP_WITHIN_MS = 5 * 60 * 1000;
const PREVIEW_CHARS = 500;

let hooks = {
  me: () => null, // the signed-in user
  may: () => false, // may(action, message): the group's permissions say so
  onReply: () => {},
  onJump: () => {},
  onEdited: () => {},
  onDeleted: () => {},
  onGrew: () => {}, // onGrew(pixels): something in a message took more room
};

export function initMessageView(given) {
  hooks = { ...hooks, ...given };
  document.addEventListener("click", (event) => {
    const picker = $(".reaction-picker");
    if (picker && !picker.contains(event.target) && !event.target.closest(".react-button")) closePicker();
  });
}

// -- one message ------------------------------------------------------------

export function messageNode(messageId) {
  return $("#message-list").querySelector(`li.message[data-id="${CSS.escape(messageId)}"]`);
}

export function newMessageNode(message) {
  return el("li", {
    className: "message",
    dataset: { id: message.id, seq: String(message.seq) },
  });
}

export function fillMessage(node, message) {
  const me = hooks.me();
  const own = message.sender_id === me?.id;
  // Only its reactions changed: those are brought up to date in place, so
  // the focus stays on the reaction just pressed and the live region does
  // not read the whole message again.
  const look = messageLook(message);
  if (node.dataset.look === look && node.querySelector(":scope .message-main")) {
    updateReactions(node, message);
    return;
  }
  node.dataset.look = look;
  // The author's name opens their card (with "Message" to write to them).
  const sender = message.sender_id
    ? el("button", {
      type: "button", className: "sender", onclick: () => openProfileCard(message.sender_id),
    })
    : el("span", { className: "sender" });
  withName(message.sender_id, (name) => {
    sender.textContent = name;
    if (message.sender_id) sender.title = `${name}: profile`;
  });
  node.classList.toggle("own", own);
  node.dataset.sender = message.sender_id || "";
  node.dataset.created = message.created_at;
  node.replaceChildren(
    avatarElement(message.sender_id),
    el("div", { className: "message-main" },
      el("div", { className: "message-head" },
        sender,
        timeElement(message.created_at),
        message.edited_at
          ? el("span", { className: "edited", text: "(edited)", title: `edited ${new Date(message.edited_at).toLocaleString()}` })
          : null),
      replyQuote(message.reply_to),
      messageBody(message.body),
      attachmentList(message),
      reactionBar(message)),
    messageActions(message, own));
}

export function messageBody(body) {
  const node = el("div", { className: "message-body" });
  node.append(renderMarkdown(body, hooks.me()?.username || ""));
  // A code block wider than the message scrolls: reachable by keyboard too.
  for (const block of node.querySelectorAll("pre")) block.tabIndex = 0;
  return node;
}

// The pending copy of a message being sent: its text as it will look, what
// it answers and the files going with it, and a status line.
export function fillPending(node, pending, status, buttons) {
  const me = hooks.me();
  node.dataset.sender = me?.id || "";
  node.dataset.created = new Date(pending.createdAt || Date.now()).toISOString();
  node.replaceChildren(
    avatarElement(me?.id),
    el("div", { className: "message-main" },
      el("div", { className: "message-head" },
        el("span", { className: "sender", text: me?.display_name || me?.username || "" }),
        el("span", { className: "status", text: status }), ...buttons),
      replyQuote(pending.replyTo),
      messageBody(pending.body),
      pending.files?.length
        ? attachmentList({ file_ids: pending.files.map((f) => f.id), files: pending.files })
        : null));
}

function replyQuote(reply) {
  if (!reply) return null;
  if (reply.deleted) {
    return el("div", { className: "reply-quote deleted" },
      el("span", { className: "quote-text", text: "Replying to a deleted message" }));
  }
  const author = el("span", { className: "quote-author" });
  withName(reply.sender_id, (name) => { author.textContent = name; });
  // As it reads, not as it was typed: the markdown's text, first line.
  const text = renderMarkdown(reply.body || "").textContent;
  const firstLine = text.split("\n").find((line) => line.trim()) || "";
  return el("button", {
    type: "button", className: "reply-quote", title: "Show the message this answers",
    onclick: () => hooks.onJump(reply.id),
  }, el("span", { className: "quote-mark", "aria-hidden": "true", text: "↪" }),
  author, el("span", { className: "quote-text", text: firstLine }));
}

// -- attachments ------------------------------------------------------------

function isText(type) {
  return type.startsWith("text/") || type.startsWith("application/json");
}

function contentUrl(fileId) {
  return `/api/v1/files/${encodeURIComponent(fileId)}/content`;
}

function attachmentList(message) {
  const ids = message.file_ids || [];
  if (ids.length === 0) return null;
  const present = new Map((message.files || []).map((file) => [file.id, file]));
  return el("ul", { className: "attachments", "aria-label": "Attachments" },
    ...ids.map((id) => {
      const file = present.get(id);
      return file ? attachmentItem(file)
        : el("li", { className: "attachment gone", text: "A file that was deleted" });
    }));
}

function attachmentItem(file) {
  const type = file.content_type || "application/octet-stream";
  const url = contentUrl(file.id);
  const item = el("li", { className: "attachment", dataset: { fileId: file.id } },
    fileBadge(file),
    el("a", {
      className: "file-name", href: url, text: file.name, download: file.name,
      title: `Download ${file.name}`,
    }),
    el("span", { className: "file-size", text: formatSize(file.size) }));
  if (type.startsWith("image/")) {
    item.classList.add("image");
    item.append(el("a", { className: "thumbnail", href: url, download: file.name, tabindex: "-1" },
      el("img", {
        src: url, alt: file.name, loading: "lazy",
        onload: (event) => hooks.onGrew(event.currentTarget.offsetHeight),
      })));
  } else if (isText(type)) {
    const preview = el("pre", { className: "file-preview", hidden: true, tabindex: "0" });
    const button = el("button", {
      type: "button", className: "quiet", text: "Show preview", "aria-expanded": "false",
      onclick: () => togglePreview(file, button, preview),
    });
    item.append(button, preview);
  }
  return item;
}

// In the charset the server names (UTF-8, UTF-16, Windows-1252…).
function decodeText(bytes, contentType) {
  const charset = /charset=([^;\s]+)/i.exec(contentType || "")?.[1] || "utf-8";
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    return new TextDecoder().decode(bytes); // a charset the browser does not know
  }
}

async function togglePreview(file, button, preview) {
  const open = button.getAttribute("aria-expanded") === "true";
  if (open) {
    preview.hidden = true;
    button.setAttribute("aria-expanded", "false");
    button.textContent = "Show preview";
    return;
  }
  if (!preview.dataset.loaded) {
    button.disabled = true;
    try {
      // The first few KB are enough for PREVIEW_CHARS characters.
      const response = await fetch(contentUrl(file.id), {
        credentials: "same-origin", headers: { Range: "bytes=0-4095" },
      });
      if (!response.ok) throw new Error("The file cannot be read any more.");
      const text = decodeText(await response.arrayBuffer(), response.headers.get("Content-Type"));
      const chars = [...text];
      const more = chars.length > PREVIEW_CHARS || file.size > 4096;
      preview.textContent = chars.slice(0, PREVIEW_CHARS).join("") + (more ? "\n…" : "");
      preview.dataset.loaded = "1";
    } catch (error) {
      notify(error.message, "error");
      return;
    } finally {
      button.disabled = false;
    }
  }
  preview.hidden = false;
  button.setAttribute("aria-expanded", "true");
  button.textContent = "Hide preview";
}

// -- reactions --------------------------------------------------------------

// Everything that decides how a message looks but its reactions (and what
// the viewer may do with it, which decides its buttons).
function messageLook(message) {
  const { reactions: _reactions, change: _change, ...rest } = message;
  const rights = ["post", "react", "edit_own_message", "delete_own_message", "delete_others_message"]
    .map((action) => (hooks.may(action, message) ? "1" : "0")).join("");
  return JSON.stringify(rest) + rights;
}

function reactionBar(message) {
  const reactions = message.reactions || [];
  if (reactions.length === 0) return null;
  return el("div", { className: "reactions", role: "group", "aria-label": "Reactions" },
    ...reactions.map((reaction) => reactionButton(message, reaction)));
}

function reactionButton(message, reaction) {
  const button = el("button", {
    type: "button", className: "reaction", dataset: { emoji: reaction.emoji },
    onclick: () => {
      const mine = button.getAttribute("aria-pressed") === "true";
      toggleReaction(message, reaction.emoji, !mine);
    },
  }, el("span", { className: "emoji", text: reaction.emoji }), " ", el("span", { className: "count" }));
  setReaction(button, message, reaction);
  return button;
}

function setReaction(button, message, reaction) {
  button.setAttribute("aria-pressed", String(reaction.user_ids.includes(hooks.me()?.id)));
  button.disabled = !hooks.may("react", message);
  button.querySelector(".count").textContent = String(reaction.count);
  namesOf(reaction.user_ids, (names) => {
    button.title = `${names} reacted with ${reaction.emoji}`;
  });
}

function updateReactions(node, message) {
  const main = node.querySelector(":scope .message-main");
  const reactions = message.reactions || [];
  let bar = main.querySelector(":scope > .reactions");
  if (reactions.length === 0) {
    bar?.remove();
    return;
  }
  if (!bar) {
    main.append(reactionBar(message));
    return;
  }
  const buttons = new Map([...bar.children].map((button) => [button.dataset.emoji, button]));
  const wanted = new Set(reactions.map((reaction) => reaction.emoji));
  for (const [emoji, button] of buttons) if (!wanted.has(emoji)) button.remove();
  let previous = null;
  for (const reaction of reactions) {
    let button = buttons.get(reaction.emoji);
    if (button) setReaction(button, message, reaction);
    else button = reactionButton(message, reaction);
    // In the server's order: where each emoji was first used.
    const after = previous ? previous.nextElementSibling : bar.firstElementChild;
    if (after !== button) bar.insertBefore(button, after);
    previous = button;
  }
}

function namesOf(userIds, apply) {
  const names = userIds.map(() => "…");
  userIds.forEach((id, index) => withName(id, (name) => {
    names[index] = name;
    apply(names.join(", "));
  }));
}

async function toggleReaction(message, emoji, on) {
  const path = `/api/v1/groups/${encodeURIComponent(message.group_id)}/messages/`
    + `${encodeURIComponent(message.id)}/reactions/${encodeURIComponent(emoji)}`;
  try {
    const updated = await api(on ? "PUT" : "DELETE", path);
    hooks.onEdited(updated);
  } catch (error) {
    notify(error.message, "error");
  }
}

function openPicker(anchor, message) {
  closePicker();
  const buttons = QUICK_REACTIONS.map(([emoji, words]) => el("button", {
    type: "button", className: "quiet", text: emoji, "aria-label": `React with ${words}`,
    onclick: () => {
      closePicker(anchor);
      const now = hooks.latest?.(message.id) || message;
      const mine = (now.reactions || []).find((r) => r.emoji === emoji)?.user_ids.includes(hooks.me()?.id);
      if (!mine) toggleReaction(message, emoji, true);
    },
  }));
  const picker = el("div", {
    className: "reaction-picker", role: "group", "aria-label": "Choose a reaction",
    onkeydown: (event) => {
      const index = buttons.indexOf(document.activeElement);
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        closePicker(anchor);
      } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        event.preventDefault();
        const step = event.key === "ArrowRight" ? 1 : -1;
        buttons[(index + step + buttons.length) % buttons.length].focus();
      }
    },
  }, ...buttons);
  // Tabbing away closes it, as Esc does (without taking the focus back).
  picker.addEventListener("focusout", (event) => {
    if (event.relatedTarget && !picker.contains(event.relatedTarget) && event.relatedTarget !== anchor) closePicker();
  });
  anchor.setAttribute("aria-expanded", "true");
  anchor.closest("li.message").append(picker);
  buttons[0].focus();
}

function closePicker(returnTo = null) {
  const picker = $(".reaction-picker");
  if (!picker) return;
  picker.closest("li.message")?.querySelector(".react-button")?.setAttribute("aria-expanded", "false");
  picker.remove();
  returnTo?.focus();
}

// -- what the viewer may do -------------------------------------------------

function messageActions(message, own) {
  const buttons = [];
  if (hooks.may("post", message)) {
    buttons.push(el("button", {
      type: "button", className: "quiet", text: "Reply", title: "Reply to this message",
      onclick: () => hooks.onReply(message),
    }));
  }
  if (hooks.may("react", message)) {
    buttons.push(el("button", {
      type: "button", className: "quiet react-button", text: "React",
      title: "Add a reaction", "aria-expanded": "false",
      "aria-haspopup": "true",
      onclick: (event) => {
        const anchor = event.currentTarget;
        if (anchor.getAttribute("aria-expanded") === "true") closePicker(anchor);
        else openPicker(anchor, message);
      },
    }));
  }
  if (own && hooks.may("edit_own_message", message)) {
    buttons.push(el("button", {
      type: "button", className: "quiet", text: "Edit", title: "Edit this message",
      onclick: () => startEditing(message.id),
    }));
  }
  if (hooks.may(own ? "delete_own_message" : "delete_others_message", message)) {
    buttons.push(el("button", {
      type: "button", className: "quiet", text: "Delete", title: "Delete this message",
      onclick: (event) => confirmDelete(event.currentTarget.parentElement, message),
    }));
  }
  return buttons.length ? el("div", { className: "message-actions" }, ...buttons) : "";
}

function confirmDelete(actions, message) {
  actions.classList.add("confirming");
  const node = actions.closest("li.message");
  delete node.dataset.look; // drawn whole again afterwards
  actions.replaceChildren(
    el("span", { text: "Delete this message?" }),
    el("button", {
      type: "button", className: "danger", text: "Yes, delete",
      onclick: () => deleteMessage(message, node),
    }),
    el("button", {
      type: "button", className: "quiet", text: "Cancel",
      onclick: () => fillMessage(node, hooks.latest?.(message.id) || message),
    }));
}

async function deleteMessage(message, node) {
  try {
    await api("DELETE", `/api/v1/groups/${encodeURIComponent(message.group_id)}/messages/${encodeURIComponent(message.id)}`);
    hooks.onDeleted(message);
  } catch (error) {
    notify(error.message, "error");
    fillMessage(node, hooks.latest?.(message.id) || message);
  }
}

// -- editing ------------------------------------------------------------------

// Turns a message of mine into an edit box. latest() gives the message as
// it is now (it may change while being edited).
export function startEditing(messageId, latest = () => hooks.latest?.(messageId)) {
  const node = messageNode(messageId);
  const message = latest();
  if (!node || !message || node.classList.contains("editing")) return;
  closePicker();
  delete node.dataset.look; // drawn whole again afterwards
  node.classList.add("editing");
  const editor = el("textarea", { name: "body", value: message.body, rows: 3, "aria-label": "Edit message" });
  const counter = el("span", { className: "char-counter", "aria-live": "polite", hidden: true });
  const problem = el("p", { className: "length-problem", role: "alert", hidden: true });
  const finish = () => {
    node.classList.remove("editing");
    const now = latest();
    if (now) fillMessage(node, now);
    $("#composer textarea")?.focus();
  };
  const save = async () => {
    const body = editor.value;
    if (updateCounter(counter, problem, body)) return; // too long: nothing is sent
    if (body.trim() === "" || body === message.body) {
      finish();
      return;
    }
    try {
      const edited = await api("PATCH", `/api/v1/groups/${encodeURIComponent(message.group_id)}/messages/${encodeURIComponent(messageId)}`, { body });
      hooks.onEdited(edited);
      finish();
    } catch (error) {
      problem.hidden = false;
      problem.textContent = error.message;
    }
  };
  editor.addEventListener("input", () => updateCounter(counter, problem, editor.value));
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      save();
    } else if (event.key === "Escape") {
      event.preventDefault();
      finish();
    }
  });
  const main = node.querySelector(".message-main");
  main.querySelector(".message-body").replaceWith(el("form", {
    className: "edit-form",
    onsubmit: (event) => { event.preventDefault(); save(); },
  }, editor, problem, el("div", { className: "buttons" },
    el("button", { type: "submit", text: "Save" }),
    el("button", { type: "button", className: "secondary", text: "Cancel", onclick: finish }),
    el("small", { text: "Enter to save · Esc to cancel" }),
    counter)));
  node.querySelector(".message-actions")?.remove();
  updateCounter(counter, problem, editor.value);
  editor.focus();
  editor.setSelectionRange(editor.value.length, editor.value.length);
}

// -- the list as a whole ----------------------------------------------------

// Messages stay in seq order; those still being sent stay below them all.
export function insertBySeq(node, seq) {
  const list = $("#message-list");
  let before = list.querySelector("li.pending");
  let cursor = before ? before.previousElementSibling : list.lastElementChild;
  while (cursor && (!cursor.dataset.seq || Number(cursor.dataset.seq) > seq)) {
    before = cursor;
    cursor = cursor.previousElementSibling;
  }
  list.insertBefore(node, before);
}

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const yearFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "long" });

function dayLabel(date) {
  const today = new Date();
  const yesterday = new Date(today);
  yesterday.setDate(today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  return (date.getFullYear() === today.getFullYear() ? dayFormat : yearFormat).format(date);
}

// Date separators, the "New messages" divider above the first message
// from newFrom on (a seq; null: none) and grouping, worked out again from
// the messages in the list after each change. Separators already in place
// stay as they are: the list is a live region, and one taken out and put
// back would be read out again.
export function arrangeList(newFrom) {
  const list = $("#message-list");
  const me = hooks.me();
  let previous = null;
  let divided = false;
  const wanted = new Set();
  for (const node of [...list.children]) {
    if (!node.classList.contains("message")) continue;
    const when = new Date(node.dataset.created || Date.now());
    const day = when.toDateString();
    const marks = [];
    if (!previous || previous.day !== day) marks.push({ key: `day:${day}`, className: "day", text: dayLabel(when) });
    const seq = Number(node.dataset.seq);
    if (!divided && newFrom !== null && newFrom !== undefined && seq >= newFrom
        && !node.classList.contains("pending") && node.dataset.sender !== me?.id) {
      divided = true;
      marks.push({ key: "new", className: "new-messages", text: "New messages" });
    }
    // The separators right above this message, as they are now.
    const present = [];
    for (let cursor = node.previousElementSibling; cursor?.classList.contains("separator");
      cursor = cursor.previousElementSibling) present.unshift(cursor);
    if (present.map((mark) => mark.dataset.key).join("|") !== marks.map((mark) => mark.key).join("|")) {
      for (const mark of present) mark.remove();
      for (const mark of marks) {
        list.insertBefore(el("li", { className: `separator ${mark.className}`, dataset: { key: mark.key } },
          el("span", { text: mark.text })), node);
      }
    }
    for (const mark of marks) wanted.add(mark.key);
    // A message being sent keeps its head: its status and Retry are there.
    const continued = marks.length === 0 && previous && !node.classList.contains("pending")
      && previous.sender === node.dataset.sender && node.dataset.sender
      && when - previous.when < GROUP_WITHIN_MS && !node.querySelector(":scope .reply-quote");
    node.classList.toggle("continued", Boolean(continued));
    previous = { day, when, sender: node.dataset.sender };
  }
  // Separators with no message under them any more (all deleted).
  for (const mark of list.querySelectorAll(":scope > li.separator")) {
    const next = mark.nextElementSibling;
    if (!next || !wanted.has(mark.dataset.key)) mark.remove();
  }
}

// Brings a message into view and marks it for a moment.
export function highlightMessage(messageId) {
  const node = messageNode(messageId);
  if (!node) return false;
  node.scrollIntoView({ block: "center" });
  node.classList.remove("highlight");
  void node.offsetWidth; // restart the animation
  node.classList.add("highlight");
  setTimeout(() => node.classList.remove("highlight"), 2500);
  return true;
}
