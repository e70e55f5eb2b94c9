// The member panel of the open group: who is in it, their roles and
// presence, who is invited, and what the viewer may do about it all —
// change roles, remove people, hand over ownership, add or invite people,
// rename or delete the group. What the viewer may do is the group's
// `permissions`, as the server says (its rights table is the one truth:
// this module keeps no copy of it). chat.js says which group is shown
// (showMembers) and is told, through the hooks given to initMembers, when
// the list changes and when the viewer's own role or rights change.

import { api } from "./api.js";
import { openProfileCard, peopleCombobox } from "./people.js";
import { onFrame } from "./realtime.js";
import { $, el, notify } from "./ui.js";
import { avatarElement, rememberUser, withName } from "./users.js";

export const ROLE_ORDER = { owner: 0, admin: 1, member: 2 };

// signedIn(), me(), group(id), groupTitle(group), presenceOf(userId) →
// "online"|"offline", learnPresence([[userId, online]…]),
// onMembersChanged(groupId), onOwnRole(groupId, role),
// onGroupFetched(group): the group as the server now gives it (new rights),
// onLeft(groupId): the viewer left or deleted it.
let hooks = null;
// { groupId, members: Map(user id → member), invitations: [invitation],
//   open: user id whose manage menu is open, confirm: {userId, action} }
let shown = null;
const leaving = new Set(); // groups the viewer is leaving (no "you were removed")
let adder = null; // the people combobox of the add form

export function initMembers(options) {
  hooks = options;
  $("#add-member-form").addEventListener("submit", onAddOrInvite);
  $("#leave-group").addEventListener("click", onLeaveGroup);
  // Esc closes an open manage menu (and only that), back on its button.
  $("#member-list").addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !shown?.open || event.defaultPrevented) return;
    event.preventDefault();
    event.stopPropagation();
    const userId = shown.open;
    shown.open = null;
    shown.confirm = null;
    renderMembers();
    $(`#member-list li[data-user-id="${CSS.escape(userId)}"] .member-manage`)?.focus();
  });
  adder = peopleCombobox($("#add-member-input"), {
    // Suggest only people who are neither in the group nor invited to it.
    exclude: (user) => Boolean(shown && (shown.members.has(user.id)
      || shown.invitations.some((invitation) => invitation.user_id === user.id))),
  });
  const live = (handler) => (frame) => {
    if (hooks.signedIn()) handler(frame);
  };
  onFrame("member.joined", live(onMemberJoined));
  onFrame("member.updated", live(onMemberJoined));
  onFrame("member.left", live(onMemberLeft));
  onFrame("invitation.pending", live(({ invitation }) => {
    if (shown?.groupId !== invitation.group_id) return;
    if (!shown.invitations.some((known) => known.id === invitation.id)) shown.invitations.push(invitation);
    renderInvitations();
  }));
  onFrame("invitation.declined", live(({ group_id: groupId, invitation_id: invitationId }) => {
    if (shown?.groupId !== groupId) return;
    shown.invitations = shown.invitations.filter((known) => known.id !== invitationId);
    renderInvitations();
  }));
}

// Shows the members of that group (loading them).
export function showMembers(groupId) {
  shown = { groupId, members: new Map(), invitations: [], open: null, confirm: null };
  $("#member-list").replaceChildren();
  $("#group-invitation-list").replaceChildren();
  $("#group-invitations").hidden = true;
  $("#group-manage").replaceChildren();
  adder?.clear();
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
  $("#group-invitation-list").replaceChildren();
  $("#group-invitations").hidden = true;
  $("#group-manage").replaceChildren();
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

function groupPath(groupId) {
  return `/api/v1/groups/${encodeURIComponent(groupId)}`;
}

// What the viewer may do in the shown group, by the server's word.
function may(action) {
  const group = shown ? hooks.group(shown.groupId) : null;
  return Boolean(group?.permissions?.includes(action));
}

async function loadMembers(view) {
  const group = hooks.group(view.groupId);
  const [page, invited] = await Promise.all([
    api("GET", `${groupPath(view.groupId)}/members`),
    group?.kind === "direct"
      ? { items: [] }
      : api("GET", `${groupPath(view.groupId)}/invitations`).catch(() => ({ items: [] })),
  ]);
  if (shown !== view) return;
  view.members = new Map(page.items.map((member) => [member.user_id, member]));
  view.invitations = invited.items;
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

// -- drawing --------------------------------------------------------------------

export function renderMembers() {
  if (!shown) return;
  const members = [...shown.members.values()].sort((a, b) =>
    ROLE_ORDER[a.role] - ROLE_ORDER[b.role]
    || a.display_name.localeCompare(b.display_name));
  $("#member-count").textContent = String(members.length);
  const focused = document.activeElement?.closest?.("#member-list li")?.dataset.userId;
  const focusedClass = document.activeElement?.className;
  $("#member-list").replaceChildren(...members.map(memberRow));
  // Redrawn under the keyboard: keep the focus where it was.
  if (focused) {
    const row = $(`#member-list li[data-user-id="${CSS.escape(focused)}"]`);
    const again = [...(row?.querySelectorAll("button") || [])].find((b) => b.className === focusedClass);
    (again || row?.querySelector("button"))?.focus();
  }
  renderInvitations();
  renderControls();
}

function memberRow(member) {
  const me = hooks.me();
  const status = hooks.presenceOf(member.user_id);
  const actions = manageActions(member);
  const open = shown.open === member.user_id && actions.length > 0;
  const menuId = `manage-${member.user_id}`;
  return el("li", { className: `member${open ? " managing" : ""}`, dataset: { userId: member.user_id } },
    el("button", {
      type: "button", className: "member-open", title: `${member.display_name}'s profile`,
      onclick: () => openProfileCard(member.user_id),
    },
    el("span", { className: "member-face" },
      avatarElement(member.user_id, { size: "small" }),
      el("span", { className: `dot ${status}`, "aria-hidden": "true" })),
    el("span", { className: "member-name" },
      el("span", { text: member.display_name }),
      " ",
      el("small", { text: `@${member.username}${member.user_id === me.id ? " (you)" : ""}` })),
    el("span", { className: "visually-hidden", text: `, ${status}` })),
    member.role === "member" ? null : el("span", { className: `role ${member.role}`, text: member.role }),
    actions.length === 0 ? null : el("button", {
      type: "button", className: "quiet member-manage", text: "⋯",
      "aria-label": `Manage ${member.display_name}`, title: `Manage ${member.display_name}`,
      "aria-expanded": String(open), "aria-controls": menuId,
      onclick: () => {
        shown.open = open ? null : member.user_id;
        shown.confirm = null;
        renderMembers();
      },
    }),
    open ? manageMenu(member, actions, menuId) : null);
}

// What the viewer may do to this member: [{action, label, confirm?}].
function manageActions(member) {
  const me = hooks.me();
  if (member.user_id === me.id || member.role === "owner") return [];
  const actions = [];
  if (may("change_role")) {
    actions.push(member.role === "admin"
      ? { action: "make_member", label: "Make member" }
      : { action: "make_admin", label: "Make admin" });
  }
  if (may("transfer_ownership")) {
    actions.push({
      action: "make_owner", label: "Make owner",
      confirm: `Make ${member.display_name} the owner? You become an admin, and only they can undo it.`,
    });
  }
  if (may(member.role === "admin" ? "remove_admin" : "remove_member")) {
    actions.push({
      action: "remove", label: "Remove from group", danger: true,
      confirm: `Remove ${member.display_name} from the group?`,
    });
  }
  return actions;
}

function manageMenu(member, actions, menuId) {
  const pending = shown.confirm?.userId === member.user_id
    ? actions.find((a) => a.action === shown.confirm.action)
    : null;
  if (pending) {
    return el("div", { id: menuId, className: "member-menu confirming", role: "group", "aria-label": pending.label },
      el("p", { text: pending.confirm }),
      el("div", { className: "buttons" },
        el("button", {
          type: "button", className: pending.danger ? "danger" : "", text: `Yes, ${pending.label.toLowerCase()}`,
          onclick: (event) => manage(member, pending.action, event.currentTarget),
        }),
        el("button", {
          type: "button", className: "quiet", text: "Cancel",
          onclick: () => {
            shown.confirm = null;
            renderMembers();
          },
        })));
  }
  return el("div", { id: menuId, className: "member-menu", role: "group", "aria-label": `Manage ${member.display_name}` },
    ...actions.map((item) => el("button", {
      type: "button", className: item.danger ? "secondary danger" : "secondary", text: item.label,
      onclick: (event) => {
        if (item.confirm) {
          shown.confirm = { userId: member.user_id, action: item.action };
          renderMembers();
          $(`#${CSS.escape(menuId)} button`)?.focus();
        } else {
          manage(member, item.action, event.currentTarget);
        }
      },
    })));
}

async function manage(member, action, button) {
  const view = shown;
  const path = `${groupPath(view.groupId)}/members/${encodeURIComponent(member.user_id)}`;
  button.disabled = true;
  try {
    if (action === "make_admin" || action === "make_member") {
      const updated = await api("PATCH", path, { role: action === "make_admin" ? "admin" : "member" });
      view.open = null;
      onMemberJoined({ group_id: view.groupId, member: updated });
      notify(`${updated.display_name} is now ${updated.role === "admin" ? "an admin" : "a member"}.`);
    } else if (action === "remove") {
      await api("DELETE", path);
      view.open = null;
      view.confirm = null;
      onMemberLeft({ group_id: view.groupId, user_id: member.user_id });
      notify(`${member.display_name} was removed from the group.`);
    } else if (action === "make_owner") {
      await api("POST", `${groupPath(view.groupId)}/owner`, { user_id: member.user_id });
      view.open = null;
      view.confirm = null;
      notify(`${member.display_name} is now the owner.`);
      await refreshRights(view.groupId);
    }
  } catch (error) {
    notify(error.message, "error");
    button.disabled = false;
  }
}

function renderInvitations() {
  const items = shown.invitations.map((invitation) => {
    const by = el("small", {});
    if (invitation.inviter_id) withName(invitation.inviter_id, (name) => { by.textContent = `invited by ${name}`; });
    const name = el("span", { className: "invitee-name" });
    withName(invitation.user_id, (text) => { name.textContent = text; });
    return el("li", { className: "invitee", dataset: { userId: invitation.user_id } },
      avatarElement(invitation.user_id, { size: "small" }),
      el("span", { className: "member-name" }, name, " ", by));
  });
  $("#group-invitation-list").replaceChildren(...items);
  $("#group-invitations").hidden = items.length === 0;
}

// The panel's own controls: adding, leaving, renaming, deleting.
function renderControls() {
  const group = shown ? hooks.group(shown.groupId) : null;
  const direct = group?.kind === "direct";
  $("#add-member-form").hidden = !group || direct || !may("add_member");
  $("#leave-group").hidden = !group || direct || group.role === "owner";
  const manage = $("#group-manage");
  if (manage.contains(document.activeElement) && manage.querySelector("form, .confirming")) return;
  const buttons = [];
  if (group && !direct && may("rename")) {
    buttons.push(el("button", { type: "button", className: "secondary", text: "Rename group", onclick: startRename }));
  }
  if (group && !direct && may("delete_group")) {
    buttons.push(el("button", { type: "button", className: "secondary danger", text: "Delete group", onclick: confirmDeleteGroup }));
  }
  manage.replaceChildren(...buttons);
  manage.hidden = buttons.length === 0;
}

function startRename() {
  const view = shown;
  const group = hooks.group(view.groupId);
  // No maxlength: a name too long is the server's to refuse, with its reason,
  // and what was typed stays to be shortened.
  const input = el("input", { id: "rename-group-input", name: "name", value: group.name, required: true });
  const form = el("form", {
    className: "rename-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const save = form.querySelector("button[type=submit]");
      save.disabled = true;
      try {
        const renamed = await api("PATCH", groupPath(view.groupId), { name: input.value });
        notify(`The group is now called “${renamed.name}”.`);
        $("#group-manage").replaceChildren();
        renderControls();
      } catch (error) {
        // The server's reason, and the name as typed stays to be fixed.
        notify(error.message, "error");
        save.disabled = false;
      }
    },
  },
  el("label", { for: "rename-group-input", text: "Group name" }),
  input,
  el("div", { className: "buttons" },
    el("button", { type: "submit", text: "Save" }),
    el("button", {
      type: "button", className: "quiet", text: "Cancel",
      onclick: () => {
        $("#group-manage").replaceChildren();
        renderControls();
      },
    })));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") form.querySelector("button.quiet").click();
  });
  $("#group-manage").replaceChildren(form);
  input.focus();
  input.select();
}

function confirmDeleteGroup() {
  const view = shown;
  const group = hooks.group(view.groupId);
  const yes = el("button", {
    type: "button", className: "danger", text: "Yes, delete it",
    onclick: async () => {
      yes.disabled = true;
      leaving.add(view.groupId);
      try {
        await api("DELETE", groupPath(view.groupId));
        notify(`“${group.name}” was deleted.`);
        hooks.onLeft(view.groupId);
      } catch (error) {
        leaving.delete(view.groupId);
        notify(error.message, "error");
        yes.disabled = false;
      }
    },
  });
  $("#group-manage").replaceChildren(el("div", { className: "confirming", role: "group", "aria-label": "Delete group" },
    el("p", { text: `Delete “${group.name}” for everyone? Its messages are gone for good.` }),
    el("div", { className: "buttons" },
      yes,
      el("button", {
        type: "button", className: "quiet", text: "Cancel",
        onclick: () => {
          $("#group-manage").replaceChildren();
          renderControls();
        },
      }))));
  yes.focus();
}

// -- live changes ---------------------------------------------------------------

// The viewer's rights follow their role: ask the server for them again.
async function refreshRights(groupId) {
  try {
    const group = await api("GET", groupPath(groupId));
    if (!hooks.signedIn()) return;
    hooks.onGroupFetched(group);
    if (shown?.groupId === groupId) renderMembers();
  } catch {
    // Gone meanwhile: group.left says so.
  }
}

function onMemberJoined({ group_id: groupId, member }) {
  rememberUser(member);
  if (member.user_id === hooks.me().id) {
    const before = hooks.group(groupId)?.role;
    hooks.onOwnRole(groupId, member.role);
    if (before !== member.role) refreshRights(groupId);
  }
  if (shown?.groupId !== groupId) return;
  shown.members.set(member.user_id, member);
  // Joined: no longer merely invited.
  shown.invitations = shown.invitations.filter((invitation) => invitation.user_id !== member.user_id);
  renderMembers();
  hooks.onMembersChanged(groupId);
}

function onMemberLeft({ group_id: groupId, user_id: userId }) {
  if (shown?.groupId !== groupId) return;
  shown.members.delete(userId);
  if (shown.open === userId) shown.open = null;
  renderMembers();
  hooks.onMembersChanged(groupId);
}

// -- adding, inviting, leaving ------------------------------------------------------

async function onAddOrInvite(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const view = shown;
  const inviting = event.submitter?.value === "invite";
  const input = $("#add-member-input");
  // The person picked from the suggestions, or else the username typed.
  const person = adder.chosen();
  const username = input.value.replace(/^@/, "").trim();
  if (!view || (!person && !username)) return;
  const target = person ? { user_id: person.id } : { username };
  const buttons = form.querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  try {
    if (inviting) {
      const invitation = await api("POST", `${groupPath(view.groupId)}/invitations`, target);
      adder.clear();
      // The group hears of it too (invitation.pending), maybe first.
      if (shown === view && !view.invitations.some((known) => known.id === invitation.id)) {
        view.invitations.push(invitation);
        renderInvitations();
      }
      withName(invitation.user_id, (name) => {
        if (name !== "…") notify(`${name} is invited. They will see it in their invitations.`);
      });
    } else {
      const member = await api("POST", `${groupPath(view.groupId)}/members`, target);
      adder.clear();
      onMemberJoined({ group_id: view.groupId, member });
      notify(`${member.display_name} (@${member.username}) was added.`);
    }
  } catch (error) {
    notify(error.message, "error");
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

async function onLeaveGroup() {
  const view = shown;
  if (!view) return;
  const group = hooks.group(view.groupId);
  leaving.add(view.groupId);
  try {
    await api("DELETE", `${groupPath(view.groupId)}/members/${encodeURIComponent(hooks.me().id)}`);
    notify(`You left “${hooks.groupTitle(group)}”.`);
    hooks.onLeft(view.groupId);
  } catch (error) {
    leaving.delete(view.groupId);
    notify(error.message, "error");
  }
}
