// The profile's "Live streaming" card: what to paste into OBS (the server
// URL and the stream key, from GET /api/v1/live/key), replacing a key that
// got out, and the room's title.

import { api } from "./api.js";
import { $, formValues, notify } from "./ui.js";

let shownFor = null; // the user whose key is on the page

export function initLiveSettings() {
  $("#show-stream-key").addEventListener("click", () => revealKey(!keyRevealed()));
  $("#copy-server-url").addEventListener("click", () => copy("#live-server-url", "Server URL"));
  $("#copy-stream-key").addEventListener("click", () => copy("#live-stream-key", "Stream key"));
  $("#reset-stream-key").addEventListener("click", () => confirmReset(true));
  $("#reset-key-cancel").addEventListener("click", () => confirmReset(false));
  $("#reset-key-confirm").addEventListener("click", resetKey);
  $("#live-title-form").addEventListener("submit", saveTitle);
  $("#live-public").addEventListener("change", savePublic);
}

// Each time the profile is shown: the key may have been replaced elsewhere.
export async function showLiveSettings(me) {
  if (shownFor !== me.id) {
    // Someone else's key must not linger, even hidden, for the next person.
    fill({ server_url: "", stream_key: "", title: "" });
    revealKey(false);
    confirmReset(false);
    shownFor = me.id;
  }
  setProblem("");
  try {
    fill(await api("GET", "/api/v1/live/key"));
  } catch (error) {
    setProblem(`Live streaming is not available: ${error.message}`);
  }
}

export function forgetLiveSettings() {
  shownFor = null;
  fill({ server_url: "", stream_key: "", title: "" });
  revealKey(false);
}

function fill(key) {
  $("#live-server-url").value = key.server_url;
  $("#live-stream-key").value = key.stream_key;
  $("#live-title-form").elements.title.value = key.title;
  $("#live-public").checked = Boolean(key.public);
}

function setProblem(text) {
  $("#live-settings-problem").textContent = text;
  $("#live-settings-problem").hidden = !text;
}

function keyRevealed() {
  return $("#live-stream-key").type === "text";
}

// Hidden by default: a key shown on a shared or recorded screen is a key
// anyone may stream with.
function revealKey(shown) {
  $("#live-stream-key").type = shown ? "text" : "password";
  const button = $("#show-stream-key");
  button.textContent = shown ? "Hide" : "Show";
  button.setAttribute("aria-pressed", String(shown));
}

async function copy(selector, what) {
  const field = $(selector);
  if (!field.value) return;
  try {
    // Only in a secure context (https, or this machine): elsewhere the
    // person copies it by hand.
    await navigator.clipboard.writeText(field.value);
    notify(`${what} copied.`, "ok", field.closest(".field"));
  } catch {
    // A password field's text cannot be selected for copying: show it.
    if (field === $("#live-stream-key")) revealKey(true);
    field.focus();
    field.select();
    notify(`${what} selected: press Ctrl+C (⌘C on a Mac) to copy it.`, "ok", field.closest(".field"));
  }
}

function confirmReset(asking) {
  $("#reset-stream-key").hidden = asking;
  $("#reset-key-question").hidden = !asking;
  if (asking) $("#reset-key-cancel").focus();
}

async function resetKey() {
  const button = $("#reset-key-confirm");
  button.disabled = true;
  try {
    fill(await api("POST", "/api/v1/live/key"));
    confirmReset(false);
    notify("You have a new stream key: paste it into OBS. The old one no longer works.", "ok", $(".reset-key"));
  } catch (error) {
    notify(error.message, "error", $(".reset-key"));
  } finally {
    button.disabled = false;
  }
}

async function saveTitle(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    fill(await api("PUT", "/api/v1/live/title", { title: formValues(form).title || "" }));
    notify("Title saved: your room shows it from your next stream on.", "ok", form);
  } catch (error) {
    notify(error.message, "error", form);
  } finally {
    button.disabled = false;
  }
}

async function savePublic(event) {
  const box = event.currentTarget;
  const wanted = box.checked;
  box.disabled = true;
  try {
    fill(await api("PUT", "/api/v1/live/public", { public: wanted }));
    notify(wanted
      ? "Your room is public: anyone with its player link can watch."
      : "Your room is private again: links handed out before stop working.", "ok", box.closest(".field"));
  } catch (error) {
    box.checked = !wanted; // what the server still has
    notify(error.message, "error", box.closest(".field"));
  } finally {
    box.disabled = false;
  }
}
