// "Where you're signed in" (the profile): every sign-in of the account that
// has not ended (GET /api/v1/sessions), this device marked, and a Sign out
// button for each of the others (DELETE /api/v1/sessions/{id}), which ends
// that sign-in at once: its cookie or tokens, and its open socket.

import { api } from "./api.js";
import { $, el, notify, timeElement } from "./ui.js";

// A rough name for a device from its User-Agent: "Firefox on Linux".
// Order matters: Edge and Opera say "Chrome", Chrome says "Safari".
const BROWSERS = [
  [/Edg\//, "Edge"], [/OPR\/|Opera/, "Opera"], [/Firefox\//, "Firefox"],
  [/Chrom(e|ium)\//, "Chrome"], [/Safari\//, "Safari"], [/curl\//, "curl"],
  [/python|aiohttp|httpx|requests/i, "A script"],
];
const SYSTEMS = [
  [/Android/, "Android"], [/iPhone|iPad|iOS/, "iOS"], [/Windows/, "Windows"],
  [/Mac OS X|Macintosh/, "macOS"], [/CrOS/, "ChromeOS"], [/Linux|X11/, "Linux"],
];

export function deviceName(userAgent) {
  if (!userAgent) return "An unknown device";
  const browser = BROWSERS.find(([pattern]) => pattern.test(userAgent))?.[1];
  const system = SYSTEMS.find(([pattern]) => pattern.test(userAgent))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  return browser || system || "An app";
}

let loading = 0; // answers to an earlier showing are dropped

export async function showSessions() {
  const list = $("#session-list");
  const ticket = ++loading;
  let sessions;
  try {
    sessions = (await api("GET", "/api/v1/sessions")).items;
  } catch (error) {
    if (ticket === loading) notify(error.message, "error", $("#sessions"));
    return;
  }
  if (ticket !== loading) return;
  // This device first, then the others newest first (as the server sends).
  sessions.sort((a, b) => Number(b.current) - Number(a.current));
  list.replaceChildren(...sessions.map(sessionItem));
}

export function forgetSessions() {
  loading += 1;
  $("#session-list").replaceChildren();
}

function sessionItem(session) {
  const name = deviceName(session.user_agent);
  const details = el("p", { className: "session-details" });
  if (session.ip) details.append(session.ip, " · ");
  details.append("signed in ", timeElement(session.created_at));
  if (session.last_used_at) details.append(" · last active ", timeElement(session.last_used_at));
  const row = el("div", { className: "session-row" },
    el("div", { className: "session-text" },
      el("strong", { className: "session-device", title: session.user_agent || "" }, name),
      session.current ? el("span", { className: "this-device" }, "This device") : null,
      details));
  if (!session.current) {
    const button = el("button", {
      type: "button", className: "secondary danger",
      "aria-label": `Sign out ${name}, signed in ${new Date(session.created_at).toLocaleString()}`,
      text: "Sign out",
    });
    button.addEventListener("click", () => signOut(session, row, button));
    row.append(button);
  }
  return el("li", { dataset: { session: session.id } }, row);
}

async function signOut(session, row, button) {
  button.disabled = true;
  try {
    await api("DELETE", `/api/v1/sessions/${encodeURIComponent(session.id)}`);
  } catch (error) {
    button.disabled = false;
    // Already signed out elsewhere: it is gone all the same.
    if (error.status !== 404) {
      notify(error.message, "error", row);
      return;
    }
  }
  row.closest("li").remove();
  notify(`${deviceName(session.user_agent)} is signed out.`, "ok", $("#sessions"));
}
