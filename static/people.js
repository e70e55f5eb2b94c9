// People: finding someone (the server's typo-tolerant people search, as an
// ARIA combobox), a person's profile card, and starting a direct message
// ("New message", or "Message" on a card).

import { api } from "./api.js";
import { $, el, notify, randomId } from "./ui.js";
import { avatarElement, displayName, getUser, knownUser, rememberUser } from "./users.js";

const SEARCH_DELAY_MS = 150;
const SUGGESTIONS = 8;

// me(), presenceOf(userId) → "online"|"offline"|null (not known),
// openConversation(groupId),
// directWith(userId) → the id of the direct conversation with them, if any
// (the chat's list holds every one of them).
let hooks = null;

export function initPeople(options) {
  hooks = options;
  $("#new-message").addEventListener("click", () => openNewMessage());
  // A message author's picture opens their card too (their name is a
  // button of its own). The message list is redrawn often, so one listener
  // on the list serves every message.
  $("#message-list").addEventListener("click", (event) => {
    const author = event.target.closest("li.message > .avatar");
    const message = author?.closest("li.message[data-sender]");
    if (message?.dataset.sender) openProfileCard(message.dataset.sender);
  });
}

// -- people search ------------------------------------------------------------

export async function searchPeople(query, limit = SUGGESTIONS) {
  const params = new URLSearchParams({ q: query, limit: String(limit) });
  const page = await api("GET", `/api/v1/users/search?${params}`);
  for (const user of page.items) rememberUser(user);
  return page.items;
}

function personLine(user) {
  return [
    avatarElement(user.id, { size: "small" }),
    el("span", { className: "person-names" },
      el("span", { className: "person-name", text: displayName(user) }),
      el("small", { text: `@${user.username}` })),
  ];
}

let comboboxes = 0;

// Makes `input` a combobox over people: suggestions as the person types
// (exclude(user) hides some), arrows to move, Enter or a click to choose:
// onChoose(user). The listbox goes right after the input, so the input
// must already sit in its container (a .combo, which places the list).
// Returns { chosen(): the user chosen and still named by the text, or
// null; clear() }.
export function peopleCombobox(input, { exclude = () => false, onChoose = () => {} } = {}) {
  comboboxes += 1;
  const listbox = el("ul", {
    className: "people-suggestions", role: "listbox", id: `people-suggestions-${comboboxes}`,
    "aria-label": "People found",
  });
  listbox.hidden = true;
  input.after(listbox);
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", listbox.id);
  input.autocomplete = "off";
  let options = []; // users shown
  let active = -1;
  let chosen = null;
  let timer = null;
  let asked = 0;

  const close = () => {
    listbox.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const highlight = (index) => {
    active = index;
    [...listbox.children].forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
    const option = listbox.children[index];
    if (option?.id) {
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  };
  const choose = (user) => {
    chosen = user;
    input.value = `@${user.username}`;
    close();
    onChoose(user);
  };
  const show = (users, query) => {
    options = users;
    if (users.length === 0) {
      listbox.replaceChildren(el("li", { className: "people-none", role: "option", "aria-disabled": "true", "aria-selected": "false", text: `Nobody found for “${query}”` }));
    } else {
      listbox.replaceChildren(...users.map((user, index) => el("li", {
        id: `${listbox.id}-${index}`, role: "option", className: "people-option", "aria-selected": "false",
        dataset: { userId: user.id },
        // Chosen on mousedown, before the input loses focus and closes the list.
        onmousedown: (event) => {
          event.preventDefault();
          choose(user);
        },
      }, ...personLine(user))));
    }
    listbox.hidden = false;
    input.setAttribute("aria-expanded", "true");
    highlight(users.length > 0 ? 0 : -1);
  };
  const lookUp = async () => {
    const query = input.value.trim().replace(/^@/, "");
    const mine = ++asked;
    if (!query) {
      close();
      return;
    }
    try {
      const users = (await searchPeople(query, SUGGESTIONS + 4)).filter((user) => !exclude(user)).slice(0, SUGGESTIONS);
      if (mine === asked && document.activeElement === input) show(users, query);
    } catch (error) {
      if (mine === asked) notify(error.message, "error");
    }
  };
  input.addEventListener("input", () => {
    chosen = null;
    clearTimeout(timer);
    timer = setTimeout(lookUp, SEARCH_DELAY_MS);
  });
  input.addEventListener("keydown", (event) => {
    const open = !listbox.hidden && options.length > 0;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open) {
        lookUp();
        return;
      }
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + options.length) % options.length);
    } else if (event.key === "Enter" && open && active >= 0) {
      event.preventDefault();
      choose(options[active]);
    } else if (event.key === "Escape" && !listbox.hidden) {
      event.preventDefault();
      event.stopPropagation(); // closes the list, not the dialog around it
      close();
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
  return {
    chosen: () => (chosen && input.value === `@${chosen.username}` ? chosen : null),
    clear: () => {
      chosen = null;
      input.value = "";
      close();
    },
  };
}

// -- dialogs ------------------------------------------------------------------

// A modal <dialog>: Esc closes it and focus goes back where it was.
function dialog(id, label) {
  document.getElementById(id)?.remove();
  const opener = document.activeElement;
  const box = el("dialog", { id, className: "people-dialog", "aria-label": label });
  box.addEventListener("close", () => {
    box.remove();
    if (opener?.isConnected) opener.focus();
  });
  // Esc closes this dialog only, not what lies under it (the drawer, the
  // member list slid over the messages).
  box.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    event.preventDefault();
    event.stopPropagation();
    box.close();
  });
  // A click on the backdrop (outside the box) closes it too.
  box.addEventListener("click", (event) => {
    if (event.target === box) box.close();
  });
  document.body.append(box);
  return box;
}

function closeButton(box) {
  return el("button", {
    type: "button", className: "quiet dialog-close", text: "✕", "aria-label": "Close",
    onclick: () => box.close(),
  });
}

// -- profile card ---------------------------------------------------------------

// A person's card: picture, names, whether they are online, and "Message".
export async function openProfileCard(userId) {
  if (!userId || !hooks) return;
  const box = dialog("profile-card", "Profile");
  box.classList.add("profile-card");
  const fill = (user) => {
    const status = hooks.presenceOf(userId);
    const me = hooks.me();
    const own = userId === me?.id;
    box.replaceChildren(
      closeButton(box),
      el("div", { className: "card-person" },
        avatarElement(userId, { size: "large" }),
        el("div", {},
          el("h2", { text: displayName(user) }),
          el("p", { className: "card-username", text: `@${user.username}` }),
          status ? el("p", { className: `card-status ${status}` },
            el("span", { className: `dot ${status}`, "aria-hidden": "true" }),
            status === "online" ? "Online" : "Offline") : null)),
      own
        ? el("p", { className: "card-hint", text: "This is you." })
        : el("div", { className: "buttons" },
          el("button", {
            type: "button", text: "Message",
            onclick: () => {
              box.close();
              messagePerson(user);
            },
          })));
  };
  const firstFocus = () => (box.querySelector(".buttons button") || box.querySelector(".dialog-close")).focus();
  const known = knownUser(userId);
  fill(known || { id: userId, username: "…", display_name: "…" });
  box.showModal();
  firstFocus();
  if (known?.username) return;
  const user = await getUser(userId);
  if (!box.isConnected) return;
  fill(user);
  firstFocus();
}

// -- direct messages ------------------------------------------------------------

// Opens the direct conversation with that person, or, when there is none
// yet, the New message dialog ready for the first message.
export function messagePerson(user) {
  const groupId = hooks.directWith(user.id);
  if (groupId) hooks.openConversation(groupId);
  else openNewMessage(user);
}

// "New message": find a person (typos forgiven), then their conversation
// opens — or, the first time, a box for the first message.
export function openNewMessage(to = null) {
  const box = dialog("new-message-dialog", "New message");
  const input = el("input", {
    id: "new-message-to", type: "text", placeholder: "Name or username", spellcheck: "false",
  });
  const problem = el("p", { className: "dialog-problem", role: "alert" });
  problem.hidden = true;
  const first = el("form", { className: "first-message" });
  first.hidden = true;
  const field = el("div", { className: "combo" }, input); // the suggestions go in it too
  const combo = peopleCombobox(input, {
    exclude: (user) => user.id === hooks.me()?.id,
    onChoose: (user) => startWith(user),
  });
  box.append(
    closeButton(box),
    el("h2", { text: "New message" }),
    el("label", { for: "new-message-to", text: "To" }),
    field,
    el("p", { className: "hint", text: "Type a name: a typo or two is fine." }),
    problem,
    first);

  function startWith(user) {
    problem.hidden = true;
    const groupId = hooks.directWith(user.id);
    if (groupId) {
      box.close();
      hooks.openConversation(groupId);
    } else {
      showFirstMessage(user);
    }
  }

  function showFirstMessage(user) {
    const textarea = el("textarea", {
      id: "first-message-body", name: "body", rows: 3, required: true,
      placeholder: `Message ${displayName(user)}`,
    });
    const send = el("button", { type: "submit", text: "Send" });
    first.replaceChildren(
      el("p", { className: "first-message-to" },
        ...personLine(user),
        el("span", { className: "hint", text: "No messages yet: say hello." })),
      el("label", { for: "first-message-body", className: "visually-hidden", text: `First message to ${displayName(user)}` }),
      textarea,
      el("div", { className: "buttons" }, send));
    first.hidden = false;
    first.onsubmit = async (event) => {
      event.preventDefault();
      if (!textarea.value.trim()) return;
      send.disabled = true;
      problem.hidden = true;
      try {
        const message = await api("POST", `/api/v1/direct/${encodeURIComponent(user.id)}/messages`, {
          body: textarea.value, client_id: randomId(),
        });
        box.close();
        hooks.openConversation(message.group_id);
      } catch (error) {
        // The server says why (too long, say); what was typed stays.
        problem.textContent = error.message;
        problem.hidden = false;
        send.disabled = false;
      }
    };
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        first.requestSubmit();
      }
    });
    textarea.focus();
  }

  box.showModal();
  if (to) {
    input.value = `@${to.username}`;
    showFirstMessage(to);
  } else {
    input.focus();
  }
  return combo;
}
