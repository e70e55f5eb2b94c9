// The one cache of people the page has seen: public profiles by id, each
// fetched at most once (lookups in flight are shared), and how a person is
// drawn everywhere — name, initials, colour, avatar picture.

import { api } from "./api.js";
import { el } from "./ui.js";

const profiles = new Map(); // user id → Promise(profile)
const known = new Map(); // user id → profile, once it has arrived
const listeners = new Set(); // called with a profile whenever one is learnt

// Anything with an id (user) or user_id (member) and the public fields.
export function rememberUser(user) {
  const id = user?.id ?? user?.user_id;
  if (!id) return;
  const profile = {
    ...known.get(id),
    ...user,
    id,
  };
  known.set(id, profile);
  // A member or a search hit has no avatar_url: the name is known, and the
  // profile is still fetched (once) when someone's picture is drawn.
  if ("avatar_url" in profile) profiles.set(id, Promise.resolve(profile));
  for (const listener of listeners) listener(profile);
}

export function getUser(id) {
  if (!profiles.has(id)) {
    const lookup = api("GET", `/api/v1/users/${encodeURIComponent(id)}`)
      .then((user) => {
        rememberUser(user);
        return known.get(id);
      })
      .catch(() => ({ id, username: "unknown", display_name: "Unknown user" }));
    profiles.set(id, lookup);
  }
  return profiles.get(id);
}

export function knownUser(id) {
  return known.get(id);
}

export function displayName(user) {
  return user?.display_name || user?.username || "…";
}

export function onUserLearnt(listener) {
  listeners.add(listener);
}

export function forgetUsers() {
  profiles.clear();
  known.clear();
}

// Calls apply(name) at once when known, else with a placeholder and again
// once the profile arrives.
export function withName(userId, apply) {
  if (!userId) {
    apply("Deleted user");
    return;
  }
  const user = known.get(userId);
  if (user) {
    apply(displayName(user));
    return;
  }
  apply("…");
  getUser(userId).then((found) => apply(displayName(found)));
}

export function initials(name) {
  const letters = name.trim().split(/\s+/).slice(0, 2).map((word) => word[0] || "");
  return (letters.join("") || "?").toUpperCase();
}

// One of twelve colours per person, the same everywhere (FNV-1a of the id).
export function colourOf(id) {
  let hash = 0x811c9dc5;
  for (const char of id || "") hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193);
  return String((hash >>> 0) % 12);
}

// The person's picture where they have one, else their initials on their
// colour; decorative (the name is always beside it).
export function avatarElement(userId, { size = "" } = {}) {
  const badge = el("span", { className: `avatar${size ? ` ${size}` : ""}`, "aria-hidden": "true" });
  badge.dataset.hue = colourOf(userId);
  const draw = (user) => {
    if (user?.avatar_url) {
      badge.replaceChildren(el("img", { src: user.avatar_url, alt: "", loading: "lazy" }));
    } else {
      badge.textContent = initials(displayName(user));
    }
  };
  const user = known.get(userId);
  if (user) draw(user);
  if (!userId) badge.textContent = "?";
  else if (!user || !("avatar_url" in user)) {
    if (!user) badge.textContent = "…";
    getUser(userId).then((found) => draw(known.get(userId) || found));
  }
  return badge;
}
