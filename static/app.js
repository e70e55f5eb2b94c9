// The gortc web client. It signs in with the session cookie (HttpOnly, so
// this script never sees a token) and speaks the JSON API documented at
// /api/openapi.json. Views are chosen by the URL fragment: #chat (the
// default once signed in), #files and #profile; signed out, #register,
// #forgot and #reset-password. Each view is its own module; this one only
// signs in and out and shows the view the fragment names.

import { api } from "./api.js";
import { loadServerInfo as loadSharedServerInfo } from "./limits.js";
import { initChat, setChatVisible, startChat, stopChat } from "./chat.js";
import { forgetFiles, hideFiles, initFiles, showFiles } from "./files.js";
import { enableSearch, initSearch } from "./search.js";
import { forgetLiveSettings, initLiveSettings, showLiveSettings } from "./live-settings.js";
import { forgetSessions, showSessions } from "./sessions.js";
import { $, el, formValues, notify } from "./ui.js";
import { avatarElement, forgetUsers, rememberUser } from "./users.js";

function fragmentParams() {
  const [view, query = ""] = location.hash.slice(1).split("?");
  return { view, params: new URLSearchParams(query) };
}

let me = null;

// What the server says about itself (GET /api/v1/server): whether it sends
// mail decides whether the "confirm your email" banner makes sense. Read
// once for the whole page (limits.js: the composer wants its limits); null
// while unknown (the banner stays hidden rather than nag).
let serverInfo = null;
async function loadServerInfo() {
  serverInfo = await loadSharedServerInfo();
  return serverInfo;
}

// The signed-in views: the section shown, its tab, whether it uses the
// whole width, and what it does when shown and hidden.
const VIEWS = {
  chat: {
    section: "#chat-view", tab: "#chat-tab", wide: true,
    show: () => setChatVisible(true), hide: () => setChatVisible(false),
  },
  files: {
    section: "#files-view", tab: "#files-tab", wide: true,
    show: () => showFiles(me), hide: () => hideFiles(),
  },
  profile: {
    section: "#profile-view", tab: "#profile-tab", wide: false,
    show: () => { showLiveSettings(me); showSessions(); }, hide: () => {},
  },
};
let shownView = null;
let focusOnShow = null; // a control to focus once the next view is shown

function showSignedOut(view) {
  stopChat();
  forgetUsers();
  forgetLiveSettings();
  forgetSessions();
  forgetFiles();
  enableSearch(false);
  shownView = null;
  document.body.classList.remove("wide");
  closeDrawer();
  closeAccountMenu();
  $("#drawer-toggle").hidden = true;
  $("#signed-in").hidden = true;
  $("#account-nav").hidden = true;
  $("#view-nav").hidden = true;
  $("#verify-banner").hidden = true;
  $("#signed-out").hidden = false;
  const forms = {
    "": "#sign-in-form", register: "#register-form", forgot: "#forgot-form",
    "reset-password": "#reset-form",
  };
  const shown = forms[view] || "#sign-in-form";
  for (const selector of Object.values(forms)) $(selector).hidden = selector !== shown;
}

function showSignedIn(view = fragmentParams().view) {
  const name = VIEWS[view] ? view : "chat";
  $("#signed-out").hidden = true;
  $("#signed-in").hidden = false;
  $("#account-nav").hidden = false;
  $("#view-nav").hidden = false;
  for (const [key, entry] of Object.entries(VIEWS)) {
    $(entry.section).hidden = key !== name;
    $(entry.tab).toggleAttribute("aria-current", key === name);
  }
  document.body.classList.toggle("wide", VIEWS[name].wide);
  // The conversations drawer (phones) belongs to the chat view.
  $("#drawer-toggle").hidden = name !== "chat";
  if (name !== "chat") closeDrawer();
  $("#whoami").textContent = `${me.display_name} (@${me.username})`;
  rememberUser(me);
  $("#account-toggle").replaceChildren(avatarElement(me.id, { size: "small" }));
  $("#account-face")?.remove();
  $("#whoami").before(el("span", { id: "account-face" }, avatarElement(me.id, { size: "small" })));
  $("#profile-name").textContent = me.display_name;
  $("#profile-details").textContent =
    `@${me.username} · ${me.email}${me.is_admin ? " · administrator" : ""}`;
  showVerification();
  const avatar = $("#avatar");
  avatar.hidden = !me.avatar_url;
  if (me.avatar_url) avatar.src = me.avatar_url;
  // No picture yet: the initials everyone else sees instead.
  $("#profile-initials")?.remove();
  if (!me.avatar_url) avatar.after(el("span", { id: "profile-initials" }, avatarElement(me.id)));
  const form = $("#profile-form");
  form.display_name.value = me.display_name;
  form.email.value = me.email;
  startChat(me);
  if (shownView && shownView !== name) VIEWS[shownView].hide();
  shownView = name;
  VIEWS[name].show();
  if (focusOnShow) {
    $(focusOnShow)?.focus();
    focusOnShow = null;
  }
  enableSearch(true);
}

// -- confirming the email address ------------------------------------------

function bannerKey() {
  return `gortc:verify-banner-dismissed:${me.id}`;
}

// The profile's "Confirm your email" card, while the address is not
// confirmed; the banner too, unless dismissed or the server sends no mail
// (then no code can come, and the banner could only nag).
function showVerification() {
  const pending = !me.email_verified;
  $("#verify-form").hidden = !pending;
  const mailing = serverInfo?.mail_enabled === true;
  $("#resend-code").hidden = !mailing;
  $("#verify-hint").textContent = mailing
    ? `We mailed a code to ${me.email}. Paste it here, or open the link in the mail.`
    : serverInfo
      ? "This server sends no mail: ask its administrator for your code."
      : "Paste the code from the confirmation mail.";
  $("#verify-banner").hidden = !pending || !mailing || localStorage.getItem(bannerKey()) === "1";
  if (pending && !serverInfo) {
    loadServerInfo().then((info) => {
      if (info && me && !me.email_verified) showVerification();
    });
  }
}

async function resendCode(anchor) {
  try {
    await api("POST", "/api/v1/auth/verify-email/resend");
    notify(`A new code is on its way to ${me.email}.`, "ok", anchor);
  } catch (error) {
    notify(error.message, "error", anchor);
  }
}

// -- the conversations drawer and the account menu (narrow screens) ---------

const NARROW = window.matchMedia("(max-width: 700px)");

function drawerOpen() {
  return $("#chat-view").classList.contains("drawer-open");
}

// What the open drawer covers: out of reach of Tab and screen readers
// until it closes.
const BEHIND_DRAWER = ["header", "#connection-banner", "#verify-banner", "#chat-view > .conversation", "#members-panel"];

function setBehindDrawer(covered) {
  for (const selector of BEHIND_DRAWER) $(selector).inert = covered;
}

function openDrawer() {
  $("#chat-view").classList.add("drawer-open");
  if (NARROW.matches) setBehindDrawer(true);
  $("#drawer-toggle").setAttribute("aria-expanded", "true");
  for (const button of document.querySelectorAll(".open-drawer")) button.setAttribute("aria-expanded", "true");
  // Into the drawer: its first conversation, else its first control.
  const first = $("#conversations").querySelector("[aria-current], button, a, input");
  first?.focus();
}

function closeDrawer({ restoreFocus = false } = {}) {
  if (!drawerOpen()) return;
  $("#chat-view").classList.remove("drawer-open");
  setBehindDrawer(false);
  $("#drawer-toggle").setAttribute("aria-expanded", "false");
  for (const button of document.querySelectorAll(".open-drawer")) button.setAttribute("aria-expanded", "false");
  if (restoreFocus && NARROW.matches) $("#drawer-toggle").focus();
}

function closeAccountMenu({ restoreFocus = false } = {}) {
  const nav = $("#account-nav");
  if (!nav.classList.contains("open")) return;
  nav.classList.remove("open");
  $("#account-toggle").setAttribute("aria-expanded", "false");
  if (restoreFocus) $("#account-toggle").focus();
}

function initFrame() {
  $("#drawer-toggle").addEventListener("click", () => {
    if (drawerOpen()) closeDrawer();
    else openDrawer();
  });
  for (const button of document.querySelectorAll(".open-drawer")) {
    button.addEventListener("click", openDrawer);
  }
  $("#drawer-scrim").addEventListener("click", () => closeDrawer({ restoreFocus: true }));
  $("#conversations .drawer-close").addEventListener("click", () => closeDrawer({ restoreFocus: true }));
  // Choosing a conversation or a live room closes the drawer: the person
  // wants to see what they chose.
  $("#conversations").addEventListener("click", (event) => {
    if (event.target.closest(".conversation-link, .live-link")) closeDrawer();
  });
  // So does any other way of opening one (a new group, a new direct
  // message, a search result): the current one is watched for a change.
  let current = null;
  new MutationObserver(() => {
    const now = $("#conversations [aria-current]");
    const id = now ? now.dataset.id || now.dataset.roomId || null : null;
    if (id !== current && now) closeDrawer();
    current = id;
  }).observe($("#conversations"), { subtree: true, childList: true, attributeFilter: ["aria-current"] });
  NARROW.addEventListener("change", () => closeDrawer());
  $("#account-toggle").addEventListener("click", () => {
    const nav = $("#account-nav");
    const open = !nav.classList.contains("open");
    nav.classList.toggle("open", open);
    $("#account-toggle").setAttribute("aria-expanded", String(open));
    if (open) $("#sign-out").focus();
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest("#account-nav")) closeAccountMenu();
  });
  // Esc closes what floats over the page, the topmost first: the account
  // menu, the member list slid over the messages, the drawer.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    if ($("#account-nav").classList.contains("open")) {
      closeAccountMenu({ restoreFocus: true });
    } else if ($("#chat-view").classList.contains("members-over")) {
      $("#members-close").click();
      $("#members-toggle").focus();
    } else if (drawerOpen()) {
      closeDrawer({ restoreFocus: true });
    } else {
      return;
    }
    event.preventDefault();
  });
  // The fragment names views: the skip link moves the focus instead.
  $("#skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    const target = $("#chat-view").hidden ? $("#main") : ($("#composer textarea:not([disabled])") || $("#main"));
    if (target.offsetParent === null) $("#main").focus();
    else target.focus();
  });
  $("#dismiss-verify-banner").addEventListener("click", () => {
    localStorage.setItem(bannerKey(), "1");
    $("#verify-banner").hidden = true;
  });
  $("#verify-banner-enter").addEventListener("click", (event) => {
    // Once the profile is shown, the code field takes the focus.
    const field = "#verify-form input[name=token]";
    if (shownView === "profile") {
      event.preventDefault();
      $(field).focus();
    } else {
      focusOnShow = field;
    }
  });
  $("#resend-code").addEventListener("click", () => resendCode($("#verify-form")));
}

async function route() {
  let { view, params } = fragmentParams();
  if (view === "verify-email" && params.get("token")) {
    try {
      await api("POST", "/api/v1/auth/verify-email", { token: params.get("token") });
      notify("Your email address is confirmed.");
    } catch (error) {
      notify(error.message, "error");
    }
    // The answer is about the account: show it.
    history.replaceState(null, "", "/#profile");
    view = "profile";
  }
  try {
    [me] = await Promise.all([api("GET", "/api/v1/users/me"), loadServerInfo()]);
  } catch (error) {
    if (error.status !== 401) notify(error.message, "error");
    me = null;
  }
  if (me) showSignedIn(view);
  else showSignedOut(view);
}

function onSubmit(selector, handler) {
  $(selector).addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    notify("", "ok", form);
    try {
      await handler(form);
    } catch (error) {
      // Said in the form it is about, where the person is looking.
      notify(error.message, "error", form);
    } finally {
      button.disabled = false;
    }
  });
}

onSubmit("#sign-in-form", async (form) => {
  me = await api("POST", "/api/v1/auth/session", formValues(form));
  form.reset();
  notify("");
  location.hash = "";
  showSignedIn("");
});

onSubmit("#register-form", async (form) => {
  const values = formValues(form);
  await api("POST", "/api/v1/auth/register", values);
  me = await api("POST", "/api/v1/auth/session", {
    login: values.username, password: values.password,
  });
  form.reset();
  notify(serverInfo?.mail_enabled ? "Welcome! We mailed you a code to confirm your address." : "");
  location.hash = "";
  showSignedIn("");
});

onSubmit("#forgot-form", async (form) => {
  await api("POST", "/api/v1/auth/password-reset", formValues(form));
  form.reset();
  notify("If that address has an account, a reset link is on its way.", "ok", form);
});

onSubmit("#reset-form", async (form) => {
  const { params } = fragmentParams();
  await api("POST", "/api/v1/auth/password-reset/confirm", {
    token: params.get("token") || "", password: formValues(form).password || "",
  });
  form.reset();
  notify("Your password is set. Sign in with it.");
  location.hash = "";
});

onSubmit("#profile-form", async (form) => {
  me = await api("PATCH", "/api/v1/users/me", formValues(form));
  form.current_password.value = "";
  notify("Profile saved.", "ok", form);
  showSignedIn();
});

onSubmit("#avatar-form", async (form) => {
  me = await api("PUT", "/api/v1/users/me/avatar", new FormData(form));
  form.reset();
  notify("Picture updated.", "ok", form);
  showSignedIn();
});

onSubmit("#verify-form", async (form) => {
  me = await api("POST", "/api/v1/auth/verify-email", { token: form.token.value });
  form.reset();
  notify("Your email address is confirmed.");
  showSignedIn();
});

onSubmit("#password-form", async (form) => {
  await api("POST", "/api/v1/users/me/password", formValues(form));
  form.reset();
  notify("Password changed. Your other devices were signed out.", "ok", form);
});

$("#sign-out").addEventListener("click", async () => {
  stopChat();
  try {
    await api("DELETE", "/api/v1/auth/session");
  } finally {
    me = null;
    notify("You are signed out.");
    history.replaceState(null, "", "/");
    showSignedOut("");
  }
});

$("#resend-verification").addEventListener("click", () => resendCode($("#verify-banner")));

$("#notice").addEventListener("click", () => { $("#notice").hidden = true; });

initFrame();
initLiveSettings();
initFiles();
initSearch();
initChat({
  onSessionEnded() {
    me = null;
    history.replaceState(null, "", "/");
    showSignedOut("");
    notify("Your session has ended. Please sign in again.", "error");
  },
});

window.addEventListener("hashchange", route);
route();
