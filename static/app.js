// The gortc web client. It signs in with the session cookie (HttpOnly, so
// this script never sees a token) and speaks the JSON API documented at
// /api/openapi.json. Views are chosen by the URL fragment: #chat (the
// default once signed in), #files and #profile; signed out, #register,
// #forgot and #reset-password. Each view is its own module; this one only
// signs in and out and shows the view the fragment names.

import { api } from "./api.js";
import { initChat, setChatVisible, startChat, stopChat } from "./chat.js";
import { forgetFiles, hideFiles, initFiles, showFiles } from "./files.js";
import { forgetLiveSettings, initLiveSettings, showLiveSettings } from "./live-settings.js";
import { $, formValues, notify } from "./ui.js";
import { forgetUsers } from "./users.js";

function fragmentParams() {
  const [view, query = ""] = location.hash.slice(1).split("?");
  return { view, params: new URLSearchParams(query) };
}

let me = null;

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
    show: () => showLiveSettings(me), hide: () => {},
  },
};
let shownView = null;

function showSignedOut(view) {
  stopChat();
  forgetUsers();
  forgetLiveSettings();
  forgetFiles();
  shownView = null;
  document.body.classList.remove("wide");
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
  $("#whoami").textContent = `${me.display_name} (@${me.username})`;
  $("#profile-name").textContent = me.display_name;
  $("#profile-details").textContent =
    `@${me.username} · ${me.email}${me.is_admin ? " · administrator" : ""}`;
  $("#verify-banner").hidden = me.email_verified;
  const avatar = $("#avatar");
  avatar.hidden = !me.avatar_url;
  if (me.avatar_url) avatar.src = me.avatar_url;
  const form = $("#profile-form");
  form.display_name.value = me.display_name;
  form.email.value = me.email;
  startChat(me);
  if (shownView && shownView !== name) VIEWS[shownView].hide();
  shownView = name;
  VIEWS[name].show();
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
    me = await api("GET", "/api/v1/users/me");
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
    try {
      await handler(form);
    } catch (error) {
      notify(error.message, "error");
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
  notify("Welcome! We sent you a mail to confirm your address.");
  location.hash = "";
  showSignedIn("");
});

onSubmit("#forgot-form", async (form) => {
  await api("POST", "/api/v1/auth/password-reset", formValues(form));
  form.reset();
  notify("If that address has an account, a reset link is on its way.");
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
  notify("Profile saved.");
  showSignedIn();
});

onSubmit("#avatar-form", async (form) => {
  me = await api("PUT", "/api/v1/users/me/avatar", new FormData(form));
  form.reset();
  notify("Picture updated.");
  showSignedIn();
});

onSubmit("#password-form", async (form) => {
  await api("POST", "/api/v1/users/me/password", formValues(form));
  form.reset();
  notify("Password changed. Your other devices were signed out.");
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

$("#resend-verification").addEventListener("click", async () => {
  try {
    await api("POST", "/api/v1/auth/verify-email/resend");
    notify("A new confirmation link is on its way.");
  } catch (error) {
    notify(error.message, "error");
  }
});

$("#notice").addEventListener("click", () => { $("#notice").hidden = true; });

initLiveSettings();
initFiles();
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
