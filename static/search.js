// One search box in the header over messages, files and people. Ctrl+K
// (Cmd+K) focuses it anywhere, "/" when not typing in a field. Results show
// in a panel below the header, grouped by kind; arrows move through them
// (the input stays focused: a combobox over a listbox), Enter opens one,
// Esc closes the panel. A message result opens its conversation there
// (chat.js), a file result the Files view with its preview, a person their
// profile card (people.js).
//
// The server marks every matched word in a snippet (and a file's
// name_highlight) between U+E000 and U+E001, private-use characters that
// cannot occur in indexed text: the text is never parsed as markup, only
// split at those two characters into text nodes and <mark> elements.

import { api } from "./api.js";
import { openMessage } from "./chat.js";
import { fileBadge, openFile } from "./files.js";
import { openProfileCard } from "./people.js";
import { $, el, timeElement } from "./ui.js";
import { formatSize } from "./uploads.js";
import { avatarElement, displayName, rememberUser, withName } from "./users.js";

const MARK_START = "\uE000";
const MARK_END = "\uE001";
const DEBOUNCE_MS = 200;
const LIMITS = { messages: 8, files: 5, people: 5 };

let enabled = false;
let timer = null;
let asked = 0; // the number of the latest query: older answers are dropped
const actions = new WeakMap(); // option node → {open, keepOpen}
let activeNode = null; // the option the arrows are on
let serial = 0; // makes option ids unique
let shownQuery = ""; // the query whose results are shown
let groupNames = null; // Promise(Map group id → name), per opening of the panel

const input = () => $("#search-input");
const panel = () => $("#search-panel");

// "a \uE000b\uE001 c" → ["a ", <mark>b</mark>, " c"], as DOM nodes only.
export function highlighted(text) {
  const nodes = [];
  let rest = String(text ?? "");
  while (rest) {
    const start = rest.indexOf(MARK_START);
    if (start < 0) {
      nodes.push(document.createTextNode(rest.replaceAll(MARK_END, "")));
      break;
    }
    if (start > 0) nodes.push(document.createTextNode(rest.slice(0, start).replaceAll(MARK_END, "")));
    rest = rest.slice(start + 1);
    let end = rest.indexOf(MARK_END);
    if (end < 0) end = rest.length; // an unclosed marker runs to the end
    nodes.push(el("mark", { text: rest.slice(0, end).replaceAll(MARK_START, "") }));
    rest = rest.slice(end + 1);
  }
  return nodes;
}

// -- the panel ---------------------------------------------------------------

function openPanel() {
  panel().hidden = false;
  input().setAttribute("aria-expanded", "true");
}

export function closeSearch({ clear = false } = {}) {
  clearTimeout(timer);
  asked += 1;
  const box = input();
  if (!box) return;
  panel().hidden = true;
  box.setAttribute("aria-expanded", "false");
  box.removeAttribute("aria-activedescendant");
  activeNode = null;
  groupNames = null;
  if (clear) box.value = "";
}

function setStatus(text, kind = "") {
  const status = $("#search-status");
  status.textContent = text;
  status.className = `search-status ${kind}`;
  status.hidden = !text;
}

// The options as shown, top to bottom.
function optionNodes() {
  return [...$("#search-results").querySelectorAll("[role=option]")];
}

function setActive(node) {
  activeNode = node;
  for (const other of optionNodes()) {
    other.classList.toggle("active", other === node);
    other.setAttribute("aria-selected", String(other === node));
  }
  if (node) {
    input().setAttribute("aria-activedescendant", node.id);
    node.scrollIntoView({ block: "nearest" });
  } else {
    input().removeAttribute("aria-activedescendant");
  }
}

function moveActive(step) {
  const nodes = optionNodes();
  if (!nodes.length) return;
  const at = nodes.indexOf(activeNode);
  const next = at < 0 ? (step > 0 ? 0 : nodes.length - 1) : (at + step + nodes.length) % nodes.length;
  setActive(nodes[next]);
}

function choose(node) {
  const action = node && actions.get(node);
  if (!action || node.getAttribute("aria-disabled") === "true") return;
  if (action.keepOpen) {
    action.open(node);
    return;
  }
  closeSearch({ clear: true });
  input().blur();
  action.open();
}

function option(kind, open, children, { keepOpen = false } = {}) {
  serial += 1;
  const node = el("div", {
    id: `search-option-${kind}-${serial}`, role: "option", className: `search-result ${kind}`,
    "aria-selected": "false",
  }, ...children);
  // Pointer clicks open at once; mousedown keeps the focus in the box.
  node.addEventListener("mousedown", (event) => event.preventDefault());
  node.addEventListener("click", () => choose(node));
  actions.set(node, { open, keepOpen });
  return node;
}

// One kind's results; with a next page, a last option that loads it in
// place (the panel stays open, the arrows go on from where they were).
function section(kind, title, page, render, more) {
  if (!page?.items.length) return null;
  const group = el("div", { role: "group", className: "search-group", "aria-label": title },
    el("div", { className: "search-group-title", "aria-hidden": "true", text: title }),
    ...page.items.map(render));
  const addMore = (cursor) => {
    if (!cursor || !more) return;
    const query = shownQuery;
    group.append(option("more", async (node) => {
      node.setAttribute("aria-disabled", "true");
      node.textContent = "Loading…";
      const mine = asked;
      try {
        const next = await more(query, cursor);
        if (mine !== asked) return;
        const added = next.items.map(render);
        node.replaceWith(...added);
        addMore(next.next_cursor);
        if (activeNode === node) setActive(added[0] || group.querySelector(".search-result.more"));
      } catch (error) {
        if (mine !== asked) return;
        node.removeAttribute("aria-disabled");
        node.textContent = `${error.message} Try again.`;
      }
    }, [el("span", { className: "search-more", text: `More ${title.toLowerCase()}` })], { keepOpen: true }));
  };
  addMore(page.next_cursor);
  return group;
}

const pageOf = (answer) => (answer.status === "fulfilled" ? answer.value : null);

// -- results ---------------------------------------------------------------------

function groupPlace(group) {
  // A direct conversation's peer is the other person's id.
  if (group.kind === "direct" && group.peer) return { direct: true, peer: group.peer };
  return { direct: false, name: group.name };
}

// The names of the person's conversations, asked once per opening of the
// panel (one page covers nearly everyone; a group beyond it is asked alone).
function loadGroupNames() {
  groupNames ??= api("GET", "/api/v1/groups?limit=500")
    .then((page) => new Map(page.items.map((group) => [group.id, groupPlace(group)])))
    .catch(() => new Map());
  return groupNames;
}

async function placeOf(groupId) {
  const names = await loadGroupNames();
  if (!names.has(groupId)) {
    names.set(groupId, api("GET", `/api/v1/groups/${encodeURIComponent(groupId)}`).then(groupPlace, () => null));
  }
  return names.get(groupId);
}

function whereElement(groupId) {
  const where = el("span", { className: "search-where" });
  placeOf(groupId).then((group) => {
    if (!group) return;
    if (group.direct) withName(group.peer, (name) => { where.textContent = `with ${name}`; });
    else where.textContent = `in #${group.name}`;
  });
  return where;
}

function messageResult(item) {
  const message = item.message;
  const who = el("strong", { className: "search-who" });
  withName(message.sender_id, (name) => { who.textContent = name; });
  return option("message", () => openMessage(message.group_id, message.id, message.seq), [
    avatarElement(message.sender_id, { size: "small" }),
    el("div", { className: "search-text" },
      el("div", { className: "search-line" }, who, " ", whereElement(message.group_id), " ", timeElement(message.created_at)),
      el("div", { className: "search-snippet" }, ...highlighted(item.snippet))),
  ]);
}

function fileResult(item) {
  const file = item.file;
  return option("file", () => openFile(file.id), [
    fileBadge(file),
    el("div", { className: "search-text" },
      el("div", { className: "search-line" },
        el("strong", { className: "search-file-name" }, ...highlighted(item.name_highlight || file.name)),
        " ", el("span", { className: "search-where", text: formatSize(file.size) })),
      item.snippet ? el("div", { className: "search-snippet" }, ...highlighted(item.snippet)) : null),
  ]);
}

function personResult(user) {
  rememberUser(user);
  return option("person", () => openProfileCard(user.id), [
    avatarElement(user.id, { size: "small" }),
    el("div", { className: "search-text" },
      el("div", { className: "search-line" },
        el("strong", { text: displayName(user) }), " ",
        el("span", { className: "search-where", text: `@${user.username}` }))),
  ]);
}

async function search(query) {
  const mine = ++asked;
  openPanel();
  setStatus("Searching…", "busy");
  const q = encodeURIComponent(query);
  const [messages, files, people] = await Promise.allSettled([
    api("GET", `/api/v1/messages/search?q=${q}&limit=${LIMITS.messages}`),
    api("GET", `/api/v1/files/search?q=${q}&limit=${LIMITS.files}`),
    api("GET", `/api/v1/users/search?q=${q}&limit=${LIMITS.people}`),
  ]);
  if (mine !== asked) return; // a newer query is on its way, or the panel closed
  shownQuery = query;
  const groups = [
    section("messages", "Messages", pageOf(messages), messageResult, (text, cursor) => api(
      "GET", `/api/v1/messages/search?q=${encodeURIComponent(text)}&limit=${LIMITS.messages}&cursor=${encodeURIComponent(cursor)}`)),
    section("files", "Files", pageOf(files), fileResult, (text, cursor) => api(
      "GET", `/api/v1/files/search?q=${encodeURIComponent(text)}&limit=${LIMITS.files}&cursor=${encodeURIComponent(cursor)}`)),
    section("people", "People", pageOf(people), personResult, null),
  ].filter(Boolean);
  $("#search-results").replaceChildren(...groups);
  setActive(null);
  // The server's own words for a query it refuses (too long, say).
  const failed = [messages, files, people].find((answer) => answer.status === "rejected");
  if (failed) setStatus(failed.reason.message, "problem");
  else if (!groups.length) setStatus(`Nothing found for “${query}”.`);
  else setStatus("");
}

function onInput() {
  clearTimeout(timer);
  const query = input().value.trim();
  if (!query) {
    closeSearch();
    return;
  }
  timer = setTimeout(() => search(query), DEBOUNCE_MS);
}

function onKeydown(event) {
  const open = !panel().hidden;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    if (!open) return;
    event.preventDefault();
    moveActive(event.key === "ArrowDown" ? 1 : -1);
  } else if (event.key === "Enter") {
    event.preventDefault();
    const nodes = open ? optionNodes() : [];
    if (nodes.length) choose(activeNode?.isConnected ? activeNode : nodes[0]);
    else if (input().value.trim()) {
      clearTimeout(timer);
      search(input().value.trim());
    }
  } else if (event.key === "Escape") {
    event.preventDefault();
    if (open) closeSearch();
    else {
      input().value = "";
      input().blur();
    }
  }
}

function typingSomewhere(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function onGlobalKeydown(event) {
  if (!enabled) return;
  const box = input();
  // Autofill sends keydown events without a key.
  const key = typeof event.key === "string" ? event.key : "";
  const ctrlK = (event.ctrlKey || event.metaKey) && !event.altKey && key.toLowerCase() === "k";
  const slash = key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey
    && !typingSomewhere(event.target);
  // Behind a modal dialog the box cannot take the focus: the keys are left be.
  if ((!ctrlK && !slash) || document.querySelector(":modal")) return;
  event.preventDefault();
  box.focus();
  box.select();
  if (box.value.trim() && panel().hidden) search(box.value.trim());
}

// -- what app.js calls ------------------------------------------------------------

export function initSearch() {
  const box = input();
  // No keyboard shortcut to advertise on a touch screen.
  if (window.matchMedia("(pointer: coarse)").matches) box.placeholder = "Search";
  box.addEventListener("input", onInput);
  box.addEventListener("keydown", onKeydown);
  box.addEventListener("focus", () => {
    if (box.value.trim() && panel().hidden) search(box.value.trim());
  });
  $("#search-form").addEventListener("submit", (event) => event.preventDefault());
  document.addEventListener("keydown", onGlobalKeydown);
  // A click anywhere else closes the panel.
  document.addEventListener("pointerdown", (event) => {
    if (panel().hidden) return;
    if ($("#search-form").contains(event.target) || panel().contains(event.target)) return;
    closeSearch();
  });
}

export function enableSearch(on) {
  enabled = on;
  $("#search-form").hidden = !on;
  if (!on) closeSearch({ clear: true });
}
