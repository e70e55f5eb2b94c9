// Desktop notifications, opt-in: a button in the sidebar asks the browser
// for permission once and remembers the choice in localStorage. Only direct
// messages and mentions of me notify, and only while the tab is hidden
// (otherwise the page itself shows them). Clicking one brings the tab back
// on that conversation.

import { $ } from "./ui.js";

const KEY = "gortc:notifications";
let open = () => {};

function supported() {
  return "Notification" in window;
}

function wanted() {
  return localStorage.getItem(KEY) === "on";
}

export function initNotifications({ openConversation }) {
  open = openConversation;
  const button = $("#notifications-toggle");
  if (!button) return;
  button.addEventListener("click", async () => {
    if (wanted() && Notification.permission === "granted") {
      localStorage.setItem(KEY, "off");
    } else {
      const answer = await Notification.requestPermission();
      localStorage.setItem(KEY, answer === "granted" ? "on" : "off");
    }
    renderButton();
  });
  renderButton();
}

function renderButton() {
  const button = $("#notifications-toggle");
  if (!button) return;
  button.hidden = !supported() || Notification.permission === "denied";
  if (button.hidden) return;
  const on = wanted() && Notification.permission === "granted";
  button.textContent = on ? "Turn off desktop notifications" : "Turn on desktop notifications";
  button.setAttribute("aria-pressed", String(on));
}

// title: the conversation's; body: the message's text.
export function notifyMessage({ groupId, title, body }) {
  if (!supported() || !wanted() || Notification.permission !== "granted") return;
  if (document.visibilityState !== "hidden") return;
  const text = body.length > 140 ? `${body.slice(0, 139)}…` : body;
  const notification = new Notification(title, { body: text, tag: groupId });
  notification.onclick = () => {
    window.focus();
    open(groupId);
    notification.close();
  };
}
