// The composer under the open conversation: what is typed (with a counter
// near the server's limit, and nothing sent beyond it: the text is never
// cut), the message it answers (reply mode), and the files going with it
// (uploaded from this device, dropped on it, or chosen from my files),
// each a chip with its progress and a ✕. chat.js sends; this module
// decides what there is to send.

import { api } from "./api.js";
import { loadLimits, maxAttachments, updateCounter } from "./limits.js";
import { renderMarkdown } from "./markdown.js";
import { membersOf } from "./members.js";
import { $, el } from "./ui.js";
import { formatSize, uploadFile } from "./uploads.js";
import { withName } from "./users.js";

let hooks = {
  groupId: () => null, // the open conversation, or null
  send: () => {}, // send({ body, files, replyTo })
  typing: () => {},
  editLast: () => false, // true when there was a message of mine to edit
  me: () => null, // the signed-in user
};

let replyingTo = null; // the message answered, as the server gave it
let attached = []; // { key, file (once stored), name, size, progress, error, controller }
let nextKey = 1;
const drafts = new Map(); // group id → text typed there and not sent
let draftFor = null; // the conversation the composer is for now

const textarea = () => $("#composer textarea");

export function initComposer(given) {
  hooks = { ...hooks, ...given };
  const form = $("#composer");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  const box = textarea();
  box.removeAttribute("maxlength"); // the server's limit is shown, never enforced by cutting
  box.addEventListener("keydown", onKeyDown);
  box.addEventListener("input", () => {
    fit();
    showCount();
    hooks.typing();
    suggestMentions();
  });
  box.addEventListener("click", () => suggestMentions());
  box.addEventListener("blur", () => setTimeout(closeSuggestions, 150));
  box.setAttribute("aria-autocomplete", "list");
  box.setAttribute("aria-controls", "mention-suggestions");
  form.before(el("ul", {
    id: "mention-suggestions", className: "mention-suggestions", role: "listbox",
    "aria-label": "People to mention", hidden: true,
  }));
  $("#reply-cancel").addEventListener("click", () => cancelReply());
  $("#attach-toggle").addEventListener("click", () => toggleAttachMenu());
  $("#attach-upload").addEventListener("click", () => {
    toggleAttachMenu(false);
    $("#attach-input").click();
  });
  $("#attach-pick").addEventListener("click", () => {
    toggleAttachMenu(false);
    pickFromMyFiles();
  });
  $("#attach-input").addEventListener("change", (event) => {
    addFiles([...event.target.files]);
    event.target.value = "";
  });
  $("#attach-menu").addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      toggleAttachMenu(false);
      $("#attach-toggle").focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".attach")) toggleAttachMenu(false);
  });
  // Files dropped on the open conversation (its messages or the composer)
  // go with the next message, and not into whatever the page does with
  // files dropped elsewhere; the composer shows where they will go.
  const zone = $("#conversation-main");
  const mark = $("#composer-area");
  zone.addEventListener("dragover", (event) => {
    if (![...event.dataTransfer.types].includes("Files")) return;
    event.preventDefault();
    event.stopPropagation();
    event.dataTransfer.dropEffect = "copy";
    mark.classList.add("drop-here");
  });
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) mark.classList.remove("drop-here");
  });
  zone.addEventListener("drop", (event) => {
    mark.classList.remove("drop-here");
    if (!event.dataTransfer.files.length) return;
    event.preventDefault();
    event.stopPropagation();
    addFiles([...event.dataTransfer.files]);
  });
  loadLimits().then(showCount);
}

function onKeyDown(event) {
  const box = event.currentTarget;
  if (suggestions && onSuggestionKey(event)) return;
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  } else if (event.key === "ArrowUp" && box.value === "" && !event.shiftKey && !event.altKey
      && !event.ctrlKey && !event.metaKey) {
    if (hooks.editLast()) event.preventDefault();
  } else if (event.key === "Escape" && replyingTo) {
    event.preventDefault();
    cancelReply();
  }
}

// -- @mentions: the conversation's members as one types after an @ -------------

let suggestions = null; // { start, end, items, index } while the list is open
const MENTION_BEFORE_CARET = /(^|[^\w@.\-/])@([A-Za-z0-9_.-]{0,32})$/;

function suggestMentions() {
  const box = textarea();
  const caret = box.selectionStart;
  const match = caret === box.selectionEnd ? MENTION_BEFORE_CARET.exec(box.value.slice(0, caret)) : null;
  const members = match ? membersOf(hooks.groupId()) : null;
  if (!members) {
    closeSuggestions();
    return;
  }
  const query = match[2].toLowerCase();
  const meId = hooks.me()?.id;
  const items = [...members.values()]
    .filter((member) => member.user_id !== meId && (member.username.toLowerCase().startsWith(query)
      || member.display_name.toLowerCase().split(/\s+/).some((word) => word.startsWith(query))))
    .sort((a, b) => a.username.localeCompare(b.username))
    .slice(0, 6);
  if (items.length === 0) {
    closeSuggestions();
    return;
  }
  const keep = suggestions?.items[suggestions.index]?.user_id;
  const index = Math.max(0, items.findIndex((member) => member.user_id === keep));
  suggestions = { start: caret - query.length - 1, end: caret, items, index };
  renderSuggestions();
}

function renderSuggestions() {
  const list = $("#mention-suggestions");
  const box = textarea();
  list.replaceChildren(...suggestions.items.map((member, index) => el("li", {
    id: `mention-option-${index}`, role: "option", "aria-selected": String(index === suggestions.index),
    onmousedown: (event) => {
      event.preventDefault(); // the composer keeps the focus
      pick(index);
    },
  }, el("strong", { text: member.display_name }), " ", el("small", { text: `@${member.username}` }))));
  list.hidden = false;
  box.setAttribute("aria-activedescendant", `mention-option-${suggestions.index}`);
}

function closeSuggestions() {
  if (!suggestions) return;
  suggestions = null;
  $("#mention-suggestions").hidden = true;
  textarea().removeAttribute("aria-activedescendant");
}

// Up, Down, Enter, Tab and Esc belong to the list while it is open.
function onSuggestionKey(event) {
  const count = suggestions.items.length;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    suggestions.index = (suggestions.index + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
    renderSuggestions();
  } else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && !event.isComposing) {
    pick(suggestions.index);
  } else if (event.key === "Escape") {
    closeSuggestions();
  } else {
    return false;
  }
  event.preventDefault();
  return true;
}

function pick(index) {
  const box = textarea();
  const { start, end, items } = suggestions;
  const text = `@${items[index].username} `;
  box.value = box.value.slice(0, start) + text + box.value.slice(end);
  box.setSelectionRange(start + text.length, start + text.length);
  closeSuggestions();
  fit();
  showCount();
  box.focus();
}

// As tall as its text, wrapped lines too, up to eight lines; then it scrolls.
function fit() {
  const box = textarea();
  box.style.height = "auto";
  if (!box.value) return;
  const style = getComputedStyle(box);
  const line = parseFloat(style.lineHeight) || 22;
  const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
  const border = parseFloat(style.borderTopWidth) + parseFloat(style.borderBottomWidth);
  const content = Math.min(box.scrollHeight - padding, line * 8);
  box.style.height = `${style.boxSizing === "border-box" ? content + padding + border : content}px`;
}

function showCount() {
  return updateCounter($("#composer-counter"), $("#composer-problem"), textarea().value);
}

function say(problem) {
  const node = $("#composer-problem");
  node.textContent = problem;
  node.hidden = !problem;
}

function submit() {
  if (!hooks.groupId()) return;
  const box = textarea();
  const body = box.value;
  if (showCount()) {
    box.focus();
    return; // over the limit: nothing is sent, nothing is cut
  }
  if (attached.some((item) => !item.file && !item.error)) {
    say("Wait until the files are uploaded, then send.");
    return;
  }
  if (attached.some((item) => item.error)) {
    say("A file could not be uploaded: remove it (✕) to send without it.");
    return;
  }
  const files = attached.filter((item) => item.file).map((item) => item.file);
  if (body.trim() === "" && files.length === 0) return;
  hooks.send({ body, files, replyTo: replyingTo });
  box.value = "";
  fit();
  showCount();
  clearAttachments();
  cancelReply(false);
}

// A new conversation: what was being answered or attached was for the
// last; what was typed there waits for it (a draft per conversation).
export function resetComposer() {
  const box = textarea();
  if (draftFor) drafts.set(draftFor, box.value);
  draftFor = hooks.groupId();
  box.value = drafts.get(draftFor) || "";
  drafts.delete(draftFor);
  fit();
  showCount();
  cancelReply(false);
  for (const item of attached) if (!item.file) item.controller?.abort(); // not for this one any more
  clearAttachments();
  say("");
}

// A message the server refused comes back to be changed: its text, files
// and what it answered, with the server's reason. Only into an empty
// composer of its own conversation (nothing typed since is overwritten);
// false when it could not.
export function restoreDraft({ groupId, body, files = [], replyTo: answered = null }, reason) {
  const box = textarea();
  if (hooks.groupId() !== groupId || box.value !== "" || attached.length > 0) return false;
  box.value = body;
  fit();
  attached = files.map((file) => ({
    key: nextKey++, file, name: file.name, size: file.size, progress: 1, error: "", controller: null,
  }));
  renderChips();
  if (answered) replyTo(answered);
  else cancelReply(false);
  if (!showCount()) say(reason);
  box.focus();
  return true;
}

// Signed out: nothing typed by one person is left for the next.
export function forgetComposer() {
  for (const item of attached) if (!item.file) item.controller?.abort();
  drafts.clear();
  draftFor = null;
  textarea().value = "";
  fit();
  cancelReply(false);
  clearAttachments();
  say("");
}

// -- replies ------------------------------------------------------------------

export function replyTo(message) {
  replyingTo = {
    id: message.id, sender_id: message.sender_id, body: message.body, deleted: false,
  };
  const author = $("#reply-author");
  withName(message.sender_id, (name) => { author.textContent = name; });
  const text = renderMarkdown(message.body).textContent;
  $("#reply-text").textContent = (text.split("\n").find((line) => line.trim()) || "").slice(0, 200);
  $("#reply-bar").hidden = false;
  textarea().focus();
}

function cancelReply(focus = true) {
  replyingTo = null;
  $("#reply-bar").hidden = true;
  if (focus) textarea().focus();
}

// -- attachments --------------------------------------------------------------

function toggleAttachMenu(open) {
  const menu = $("#attach-menu");
  const show = open ?? menu.hidden;
  if (show === !menu.hidden) return;
  menu.hidden = !show;
  $("#attach-toggle").setAttribute("aria-expanded", String(show));
  if (show) $("#attach-upload").focus();
}

function roomFor(count) {
  const room = maxAttachments() - attached.length;
  if (count <= room) return true;
  say(`A message carries at most ${maxAttachments()} files.`);
  return false;
}

// Uploads each file into my files, then attaches it.
export function addFiles(files) {
  if (!hooks.groupId() || files.length === 0 || !roomFor(files.length)) return;
  say("");
  for (const file of files) {
    const item = {
      key: nextKey++, file: null, name: file.name, size: file.size, progress: 0, error: "",
      controller: new AbortController(),
    };
    attached.push(item);
    uploadFile(file, {
      signal: item.controller.signal,
      onProgress: (fraction) => {
        item.progress = fraction;
        updateChip(item);
      },
    }).then((stored) => {
      item.file = stored;
      item.name = stored.name;
      updateChip(item);
    }).catch((error) => {
      if (!attached.includes(item)) return; // removed meanwhile
      item.error = error.message;
      updateChip(item);
    });
  }
  renderChips();
}

function attachStored(file) {
  if (attached.some((item) => item.file?.id === file.id)) return;
  if (!roomFor(1)) return;
  attached.push({
    key: nextKey++, file, name: file.name, size: file.size, progress: 1, error: "", controller: null,
  });
  renderChips();
}

function clearAttachments() {
  attached = [];
  renderChips();
}

function renderChips() {
  const list = $("#composer-files");
  list.replaceChildren(...attached.map(chip));
  list.hidden = attached.length === 0;
}

function chip(item) {
  const progress = el("progress", {
    max: 1, value: item.progress, "aria-label": `Uploading ${item.name}`, hidden: Boolean(item.file),
  });
  const classes = `file-chip${item.file ? " ready" : ""}${item.error ? " failed" : ""}`;
  return el("li", { className: classes, dataset: { key: String(item.key) } },
    el("span", { className: "chip-name", text: item.name }),
    el("span", { className: "chip-size", text: formatSize(item.size) }),
    progress,
    el("span", { className: "chip-error", role: "alert" }),
    el("button", {
      type: "button", className: "quiet", text: "✕", "aria-label": `Remove ${item.name}`,
      onclick: () => {
        item.controller?.abort();
        attached = attached.filter((other) => other !== item);
        renderChips();
        textarea().focus();
      },
    }));
}

function updateChip(item) {
  const node = $(`#composer-files li[data-key="${item.key}"]`);
  if (!node) return;
  node.querySelector(".chip-name").textContent = item.name;
  const progress = node.querySelector("progress");
  progress.value = item.progress;
  progress.hidden = Boolean(item.file || item.error);
  node.classList.toggle("failed", Boolean(item.error));
  node.classList.toggle("ready", Boolean(item.file));
  node.querySelector(".chip-error").textContent = item.error;
}

// A small dialog listing my files; choosing one attaches it.
async function pickFromMyFiles() {
  let dialog = $("#file-picker");
  if (!dialog) {
    dialog = el("dialog", { id: "file-picker", className: "file-picker", "aria-labelledby": "file-picker-title" },
      el("div", { className: "file-picker-head" },
        el("h2", { id: "file-picker-title", text: "Choose from my files" }),
        el("button", {
          type: "button", className: "quiet", text: "Close", onclick: () => dialog.close(),
        })),
      el("ul", { className: "file-picker-list" }),
      el("p", { className: "empty", hidden: true }));
    document.body.append(dialog);
    dialog.addEventListener("close", () => textarea().focus());
  }
  const list = dialog.querySelector("ul");
  const note = dialog.querySelector("p");
  list.replaceChildren();
  note.hidden = false;
  note.textContent = "Loading…";
  dialog.showModal();
  try {
    const page = await api("GET", "/api/v1/files?limit=100");
    list.replaceChildren(...page.items.map((file) => el("li", {},
      el("button", {
        type: "button", className: "quiet file-choice",
        onclick: () => {
          attachStored(file);
          dialog.close();
        },
      }, el("span", { className: "chip-name", text: file.name }),
      el("small", { text: formatSize(file.size) })))));
    note.hidden = page.items.length > 0;
    note.textContent = "You have no files yet: upload one from this device.";
  } catch (error) {
    note.textContent = error.message;
  }
}
