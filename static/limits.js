// What the server allows (GET /api/v1/server), asked once per page and
// shared: the longest message, the most attachments. Until it answers (or
// if it cannot), the documented defaults hold; the server still checks
// everything and says so in its own words.

import { api } from "./api.js";

const DEFAULTS = { message_max_chars: 4000, max_attachments: 10 };

let limits = { ...DEFAULTS };
let asked = null;

// The whole answer of GET /api/v1/server (null when it could not be had),
// asked once for every module that wants it.
export function loadServerInfo() {
  if (!asked) {
    asked = api("GET", "/api/v1/server")
      .then((info) => {
        limits = { ...DEFAULTS, ...(info?.limits || {}) };
        return info;
      })
      .catch(() => {
        asked = null; // try again next time; the defaults hold meanwhile
        return null;
      });
  }
  return asked;
}

export async function loadLimits() {
  await loadServerInfo();
  return limits;
}

export function messageMaxChars() {
  return limits.message_max_chars;
}

export function maxAttachments() {
  return limits.max_attachments;
}

// The server counts characters as Python does: code points, not UTF-16
// units (an emoji is one).
export function characterCount(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

const number = new Intl.NumberFormat("en");

// Why text cannot be sent as it is, or "" when it can.
export function lengthProblem(text) {
  const over = characterCount(text) - messageMaxChars();
  if (over <= 0) return "";
  return `This message is ${number.format(over)} character${over === 1 ? "" : "s"} over the `
    + `${number.format(messageMaxChars())}-character limit.`;
}

// A counter that shows itself near the limit and turns red beyond it;
// returns the problem ("" when none) so the caller can refuse to send.
export function updateCounter(counter, problemNode, text) {
  const count = characterCount(text);
  const max = messageMaxChars();
  const problem = lengthProblem(text);
  counter.hidden = count < max * 0.8;
  counter.textContent = `${number.format(count)} / ${number.format(max)}`;
  counter.classList.toggle("over", Boolean(problem));
  problemNode.hidden = !problem;
  problemNode.textContent = problem;
  return problem;
}
