// The member panel of the open group: who is in it, their roles and
// presence, and adding people. chat.js says which group is shown
// (showMembers) and is told, through the hooks given to initMembers, when
// the list changes and when the viewer's own role changes.

import { api } from "./api.js";
import { onFrame } from "./realtime.js";
import { $, el, formValues, notify } from "./ui.js";
import { rememberUser } from "./users.js";

export const ROLE_ORDER = { owner: 0, admin: 1, member: 2 };

// signedIn(), me(), group(id), groupTitle(group), presenceOf(userId) →
// "online"|"offline", learnPresence([[userId, online]…]),
// onMembersChanged(groupId), onOwnRole(groupId, role), onLeft(groupId).
let hooks = null;
let shown = null; // { groupId, members: Map(user id → member) }
const leaving = new Set(); // groups the viewer is leaving (no "you were removed")

export function initMembers(options) {
  hooks = options;
  $("#add-member-form").addEventListener("submit", onAddMember);
  $("#leave-group").addEventListener("click", onLeaveGroup);
  const live = (handler) => (frame) => {
    if (hooks.signedIn()) handler(frame);
  };
  onFrame("member.joined", live(onMemberJoined));
  onFrame("member.updated", live(onMemberJoined));
  onFrame("member.left", live(onMemberLeft));
}

// Shows the members of that group (loading them).
export function showMembers(groupId) {
  shown = { groupId, members: new Map() };
  $("#member-list").replaceChildren();
  renderControls();
  return loadMembers(shown).catch((error) => notify(error.message, "error"));
}

// After a reconnection: what changed while away.
export function reloadMembers() {
  if (shown) loadMembers(shown).catch(() => {});
}

export function clearMembers() {
  shown = null;
  $("#member-list").replaceChildren();
  $("#member-count").textContent = "";
}

export function forgetMembers() {
  clearMembers();
  leaving.clear();
}

export function isLeaving(groupId) {
  return leaving.has(groupId);
}

// The shown group's members by user id (null for any other group).
export function membersOf(groupId) {
  return shown?.groupId === groupId ? shown.members : null;
}

export function memberCount() {
  return shown?.members.size ?? 0;
}

// Presence of these people changed: redraw their dots if they are listed.
export function membersPresenceChanged(userIds) {
  if (shown && [...userIds].some((userId) => shown.members.has(userId))) renderMembers();
}

async function loadMembers(view) {
  const page = await api("GET", `/api/v1/groups/${encodeURIComponent(view.groupId)}/members`);
  if (shown !== view) return;
  view.members = new Map(page.items.map((member) => [member.user_id, member]));
  for (const member of page.items) rememberUser(member);
  // The list says who is online now; presence frames bring the changes.
  hooks.learnPresence(page.items
    .filter((member) => typeof member.online === "boolean")
    .map((member) => [member.user_id, member.online]));
  const mine = view.members.get(hooks.me().id);
  renderMembers();
  if (mine) hooks.onOwnRole(view.groupId, mine.role);
  hooks.onMembersChanged(view.groupId);
}

export function renderMembers() {
  if (!shown) return;
  const me = hooks.me();
  const members = [...shown.members.values()].sort((a, b) =>
    ROLE_ORDER[a.role] - ROLE_ORDER[b.role]
    || a.display_name.localeCompare(b.display_name));
  $("#member-count").textContent = String(members.length);
  $("#member-list").replaceChildren(...members.map((member) => {
    const status = hooks.presenceOf(member.user_id);
    return el("li", { className: "member", dataset: { userId: member.user_id } },
      el("span", {
        className: `dot ${status}`, title: status === "online" ? "online" : "offline",
        "aria-label": status === "online" ? "online" : "offline",
      }),
      el("span", { className: "member-name" },
        el("span", { text: member.display_name }),
        " ",
        el("small", { text: `@${member.username}${member.user_id === me.id ? " (you)" : ""}` })),
      member.role === "member" ? null : el("span", { className: `role ${member.role}`, text: member.role }));
  }));
  renderControls();
}

// What the viewer may do in the panel.
function renderControls() {
  const group = shown ? hooks.group(shown.groupId) : null;
  const direct = group?.kind === "direct";
  const role = group?.role;
  $("#add-member-form").hidden = !group || direct || !(role === "owner" || role === "admin");
  $("#leave-group").hidden = !group || direct || role === "owner";
}

function onMemberJoined({ group_id: groupId, member }) {
  rememberUser(member);
  if (member.user_id === hooks.me().id) hooks.onOwnRole(groupId, member.role);
  if (shown?.groupId !== groupId) return;
  shown.members.set(member.user_id, member);
  renderMembers();
  hooks.onMembersChanged(groupId);
}

function onMemberLeft({ group_id: groupId, user_id: userId }) {
  if (shown?.groupId !== groupId) return;
  shown.members.delete(userId);
  renderMembers();
  hooks.onMembersChanged(groupId);
}

async function onAddMember(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const view = shown;
  const username = (formValues(form).username || "").replace(/^@/, "").trim();
  if (!view || !username) return;
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const member = await api("POST", `/api/v1/groups/${encodeURIComponent(view.groupId)}/members`, { username });
    form.reset();
    onMemberJoined({ group_id: view.groupId, member });
    notify(`${member.display_name} (@${member.username}) was added.`);
  } catch (error) {
    notify(error.message, "error");
  } finally {
    button.disabled = false;
  }
}

async function onLeaveGroup() {
  const view = shown;
  if (!view) return;
  const group = hooks.group(view.groupId);
  leaving.add(view.groupId);
  try {
    await api("DELETE", `/api/v1/groups/${encodeURIComponent(view.groupId)}/members/${encodeURIComponent(hooks.me().id)}`);
    notify(`You left “${hooks.groupTitle(group)}”.`);
    hooks.onLeft(view.groupId);
  } catch (error) {
    leaving.delete(view.groupId);
    notify(error.message, "error");
  }
}
