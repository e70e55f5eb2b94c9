// Small DOM helpers. User content only ever goes in through textContent.

export const $ = (selector, root = document) => root.querySelector(selector);

// el("li", {className: "x", dataset: {id: "1"}}, "text", childNode…)
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "value") node.value = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let noticeTimer = null;
const anchoredTimers = new WeakMap();

// Tells the person something. With an anchor (the form or card the notice is
// about), it appears there: inside a .card, else just after the anchor, so
// it is read where the person is looking. Without one, it is a toast at the
// bottom of the window (#notice), visible wherever the page is scrolled.
// Errors are alerts (read out at once), the rest status messages. An empty
// message clears the notice.
export function notify(message, kind = "ok", anchor = null) {
  if (anchor) {
    anchoredNotice(anchor, message, kind);
    return;
  }
  const notice = $("#notice");
  notice.setAttribute("role", kind === "error" ? "alert" : "status");
  notice.textContent = message;
  notice.className = `toast ${kind}`;
  notice.hidden = !message;
  clearTimeout(noticeTimer);
  // Notices fade on their own; errors stay longer than confirmations.
  if (message) noticeTimer = setTimeout(() => { notice.hidden = true; }, kind === "error" ? 15000 : 8000);
}

// The notice that belongs to an anchor, made the first time it is needed.
function anchoredNotice(anchor, message, kind) {
  const inside = anchor.classList.contains("card");
  let notice = inside
    ? anchor.querySelector(":scope > .form-notice")
    : anchor.nextElementSibling?.classList.contains("form-notice") ? anchor.nextElementSibling : null;
  if (!notice) {
    if (!message) return;
    notice = el("p", { className: "form-notice" });
    if (inside) anchor.append(notice);
    else anchor.after(notice);
  }
  notice.setAttribute("role", kind === "error" ? "alert" : "status");
  notice.className = `form-notice ${kind}`;
  notice.textContent = message;
  notice.hidden = !message;
  clearTimeout(anchoredTimers.get(notice));
  if (!message) return;
  // Confirmations fade. An error in a card stays until the person tries
  // again (the form is sent); elsewhere (the composer, the sidebar) it fades
  // too, later.
  if (kind !== "error" || !inside) {
    anchoredTimers.set(notice, setTimeout(() => { notice.hidden = true; }, kind === "error" ? 15000 : 8000));
  }
  if (anchor.tagName === "FORM") {
    anchor.addEventListener("submit", () => { notice.hidden = true; }, { once: true });
  }
}

export function formValues(form) {
  const values = {};
  for (const [name, value] of new FormData(form)) {
    if (typeof value === "string" && value !== "") values[name] = value;
  }
  return values;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

// "14:05" today, "21 Nov, 14:05" before; the full date in the tooltip.
export function timeElement(iso) {
  const when = new Date(iso);
  const today = new Date().toDateString() === when.toDateString();
  return el("time", {
    dateTime: iso, title: fullFormat.format(when),
    text: (today ? timeFormat : dateTimeFormat).format(when),
  });
}

export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
