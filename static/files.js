// The Files view: the signed-in person's own file store. Upload by the
// button or by dropping files anywhere on the page while the view is shown
// (several at once, one request per file, each with its progress and its
// own error from the server), the list newest first with paging, rename in
// place, delete after a confirm, download, the quota bar, and a preview of
// text files (and pictures) in a dialog that Esc closes.

import { api } from "./api.js";
import { $, el, notify, timeElement } from "./ui.js";
import { formatSize, uploadFile } from "./uploads.js";

const PAGE = 50;
const PREVIEW_BYTES = 64_000; // a preview shows at most this much text ("64 KB")
const PARALLEL_UPLOADS = 2;

let view = null; // the built elements, once initFiles has run
let shown = false;
let me = null;
let generation = 0; // bumped on sign-out: answers for the last person are dropped
let cursor = null; // next_cursor of the last page listed
const files = new Map(); // file id → file, as listed
let pendingPreview = null; // a file to preview once the view shows (from search)
// Files chosen before the view knew who is signed in (the first showFiles):
// uploaded then, never dropped.
let waitingUploads = [];
let uploadsRunning = new AbortController(); // aborted on sign-out

// -- building the view ------------------------------------------------------

function build() {
  const root = $("#files-view");
  const input = el("input", {
    type: "file", multiple: true, hidden: true, id: "files-input", tabIndex: -1,
    onchange: () => {
      upload([...input.files]);
      input.value = "";
    },
  });
  const quotaMeter = el("meter", { id: "files-quota", min: 0, max: 1, value: 0 });
  const quotaText = el("span", { id: "files-quota-text", className: "quota-text" });
  const uploads = el("ul", { className: "upload-list", "aria-label": "Uploads" });
  const uploadsBox = el(
    "section", { className: "uploads", "aria-labelledby": "uploads-heading", hidden: true },
    el("div", { className: "uploads-head" },
      el("h3", { id: "uploads-heading", text: "Uploads" }),
      el("button", {
        type: "button", className: "quiet", text: "Clear finished",
        onclick: clearFinishedUploads,
      })),
    uploads,
  );
  const list = el("ul", { id: "file-list", className: "file-list", "aria-label": "Your files" });
  const empty = el("p", {
    className: "empty files-empty", hidden: true,
    text: "No files yet. Upload some with the button above, or drop them on this page.",
  });
  const problem = el("p", { className: "problem", role: "alert", hidden: true });
  const more = el("button", {
    type: "button", className: "secondary load-more", text: "Load more", hidden: true,
    onclick: () => loadPage(false),
  });
  const overlay = el("div", { className: "drop-overlay", "aria-hidden": "true", hidden: true },
    el("p", { text: "Drop the files to upload them" }));
  const preview = buildPreview();

  root.replaceChildren(
    el("div", { className: "files-inner" },
      el("div", { className: "files-head" },
        el("h2", { text: "Files" }),
        el("div", { className: "quota" },
          el("label", { for: "files-quota", text: "Storage used" }),
          quotaMeter, quotaText),
        el("div", { className: "upload-actions" },
          el("button", { type: "button", id: "upload-button", text: "Upload files", onclick: () => input.click() }),
          input)),
      el("p", { className: "hint drop-hint", text: "Or drop files anywhere on this page. Text files can be searched by their words." }),
      uploadsBox,
      problem,
      list,
      empty,
      more),
    overlay,
    preview.dialog,
  );
  return { root, input, quotaMeter, quotaText, uploads, uploadsBox, list, empty, problem, more, overlay, preview };
}

function buildPreview() {
  const title = el("h2", { id: "file-preview-title" });
  const meta = el("p", { className: "preview-meta" });
  const body = el("div", { className: "preview-body" });
  const note = el("p", { className: "hint preview-note", hidden: true });
  const download = el("a", { className: "button secondary", text: "Download", download: "" });
  const dialog = el("dialog", { className: "file-preview", "aria-labelledby": "file-preview-title" },
    el("div", { className: "preview-head" },
      title,
      el("button", { type: "button", className: "quiet", text: "Close", onclick: () => dialog.close() })),
    meta, note, body,
    el("div", { className: "buttons" }, download));
  // A click on the backdrop (outside the dialog's box) closes it too.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
  dialog.addEventListener("close", () => body.replaceChildren());
  return { dialog, title, meta, body, note, download };
}

// -- the list -----------------------------------------------------------------

// A file's kind, for the little label beside its name: the extension
// (at most four letters) on a colour per kind. Drawn with text and CSS, not
// emoji, which some systems have no font for.
export function fileBadge(file) {
  const type = file.content_type || "";
  const kind = type.startsWith("image/") ? "image"
    : type.startsWith("audio/") || type.startsWith("video/") ? "media"
      : type === "application/pdf" ? "pdf"
        : isText(file) ? "text" : "other";
  const dot = file.name.lastIndexOf(".");
  const extension = dot > 0 ? file.name.slice(dot + 1, dot + 5).toUpperCase() : "";
  return el("span", {
    className: "file-icon", "aria-hidden": "true", dataset: { kind },
    text: extension || (kind === "text" ? "TXT" : "FILE"),
  });
}

function isText(file) {
  const type = file.content_type || "";
  return file.searchable || type.startsWith("text/") || type.startsWith("application/json");
}

// The server's reasons are clauses ("the content is not text …"): shown
// alone, they start with a capital and end with a full stop.
function sentence(text) {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

function fileRow(file) {
  const row = el("li", { className: "file-row", dataset: { id: file.id } });
  fillRow(row, file);
  return row;
}

function fillRow(row, file) {
  const badges = el("span", { className: "file-badges" });
  if (!file.searchable) {
    badges.append(
      el("span", { className: "file-badge not-searchable", text: "Not searchable" }),
      el("span", { className: "file-reason", text: sentence(file.not_searchable_reason || "only text files are searchable") }),
    );
  } else if (file.index_truncated) {
    badges.append(el("span", { className: "file-badge partly", text: "Searchable in part: only its beginning is indexed" }));
  }
  row.replaceChildren(
    fileBadge(file),
    el("div", { className: "file-main" },
      el("button", {
        type: "button", className: "file-name", text: file.name, title: `Preview ${file.name}`,
        onclick: () => openPreview(file.id),
      }),
      el("span", { className: "file-meta" }, formatSize(file.size), " · ", timeElement(file.created_at)),
      badges.childElementCount ? badges : null,
      el("p", { className: "problem row-problem", role: "alert", hidden: true })),
    el("div", { className: "file-actions" },
      el("a", {
        className: "button secondary", href: file.content_url, download: file.name, text: "Download",
        "aria-label": `Download ${file.name}`,
      }),
      el("button", {
        type: "button", className: "secondary", text: "Rename", "aria-label": `Rename ${file.name}`,
        onclick: () => startRename(row, file.id),
      }),
      el("button", {
        type: "button", className: "secondary danger", text: "Delete", "aria-label": `Delete ${file.name}`,
        onclick: () => askDelete(row, file.id),
      })),
  );
}

function rowOf(id) {
  return view.list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
}

function showRowProblem(row, message) {
  const problem = row.querySelector(".row-problem");
  if (!problem) return;
  problem.textContent = message;
  problem.hidden = !message;
}

function updateEmpty() {
  view.empty.hidden = view.list.childElementCount > 0;
}

// Adds a file at the top (just uploaded) or replaces its row (renamed).
function putFile(file, { top = false } = {}) {
  files.set(file.id, file);
  const existing = rowOf(file.id);
  if (existing) fillRow(existing, file);
  else if (top) view.list.prepend(fileRow(file));
  else view.list.append(fileRow(file));
  updateEmpty();
}

// What changed here while a list was on its way: the page answered may
// predate an upload or a delete made meanwhile, which it must not undo.
const sinceListed = { added: new Map(), deleted: new Set() };

async function loadPage(first) {
  const asked = generation;
  if (first) {
    sinceListed.added.clear();
    sinceListed.deleted.clear();
  }
  view.problem.hidden = true;
  view.more.disabled = true;
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (!first && cursor) query.set("before", cursor);
  try {
    const page = await api("GET", `/api/v1/files?${query}`);
    if (asked !== generation) return;
    if (first) {
      files.clear();
      view.list.replaceChildren();
      for (const file of sinceListed.added.values()) putFile(file, { top: true });
    }
    for (const file of page.items) {
      if (!sinceListed.deleted.has(file.id)) putFile(file);
    }
    cursor = page.next_cursor;
    view.more.hidden = !cursor;
    updateEmpty();
  } catch (error) {
    if (asked !== generation) return;
    view.problem.textContent = `The files could not be listed: ${error.message}`;
    view.problem.hidden = false;
  } finally {
    view.more.disabled = false;
  }
}

async function refreshUsage() {
  const asked = generation;
  try {
    const usage = await api("GET", "/api/v1/files/usage");
    if (asked !== generation) return;
    view.quotaMeter.max = Math.max(usage.quota_bytes, 1);
    view.quotaMeter.value = Math.min(usage.used_bytes, usage.quota_bytes);
    // Warn in colour as the store fills (the meter's own low/high bands).
    view.quotaMeter.low = usage.quota_bytes * 0.75;
    view.quotaMeter.high = usage.quota_bytes * 0.9;
    view.quotaMeter.optimum = 0;
    const count = `${usage.files} file${usage.files === 1 ? "" : "s"}`;
    view.quotaText.textContent =
      `${formatSize(usage.used_bytes)} of ${formatSize(usage.quota_bytes)} · ${count}`;
  } catch (error) {
    if (asked === generation) view.quotaText.textContent = error.message;
  }
}

// -- rename and delete ----------------------------------------------------------

function startRename(row, id) {
  const file = files.get(id);
  const nameButton = row.querySelector(".file-name");
  if (!file || !nameButton) return;
  const input = el("input", {
    name: "name", value: file.name, required: true, autocomplete: "off",
    "aria-label": `New name for ${file.name}`,
  });
  const cancel = () => {
    fillRow(row, files.get(id) || file);
    row.querySelector(".file-name")?.focus();
  };
  const form = el("form", { className: "rename-form inline-form" },
    input,
    el("button", { type: "submit", text: "Save" }),
    el("button", { type: "button", className: "quiet", text: "Cancel", onclick: cancel }));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      cancel();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = input.value;
    if (name === file.name) {
      cancel();
      return;
    }
    const buttons = form.querySelectorAll("button");
    for (const button of buttons) button.disabled = true;
    try {
      const renamed = await api("PATCH", `/api/v1/files/${encodeURIComponent(id)}`, { name });
      putFile(renamed);
      rowOf(id)?.querySelector(".file-name")?.focus();
    } catch (error) {
      // What they typed stays as it is, with the server's reason beside it.
      showRowProblem(row, error.message);
      for (const button of buttons) button.disabled = false;
      input.focus();
    }
  });
  nameButton.replaceWith(form);
  input.focus();
  input.select();
}

function askDelete(row, id) {
  const file = files.get(id);
  const actions = row.querySelector(".file-actions");
  if (!file || !actions || row.querySelector(".delete-question")) return;
  const question = el("div", { className: "delete-question", role: "group", "aria-label": `Delete ${file.name}` },
    el("span", { text: `Delete “${file.name}” for good?` }),
    el("div", { className: "buttons" },
      el("button", {
        type: "button", className: "danger", text: "Delete",
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          try {
            await api("DELETE", `/api/v1/files/${encodeURIComponent(id)}`);
            forgetRow(id);
            notify(`“${file.name}” is deleted.`);
          } catch (error) {
            if (error.status === 404) forgetRow(id);
            else {
              question.remove();
              actions.hidden = false;
              showRowProblem(row, error.message);
            }
          }
        },
      }),
      el("button", {
        type: "button", className: "quiet", text: "Cancel",
        onclick: () => {
          question.remove();
          actions.hidden = false;
          actions.querySelector("button.danger")?.focus();
        },
      })));
  actions.hidden = true;
  row.append(question);
  question.querySelector("button.danger").focus();
}

function forgetRow(id) {
  files.delete(id);
  sinceListed.added.delete(id);
  sinceListed.deleted.add(id);
  const row = rowOf(id);
  // The focus was on the row's Delete: it goes to the next file, or up.
  const next = row?.nextElementSibling || row?.previousElementSibling;
  row?.remove();
  (next?.querySelector(".file-name") || $("#upload-button")).focus();
  updateEmpty();
  refreshUsage();
}

// -- uploads ----------------------------------------------------------------------

function uploadItem(file) {
  const progress = el("progress", { max: 1, value: 0, "aria-label": `Uploading ${file.name}` });
  const status = el("span", { className: "upload-status", text: "Waiting…" });
  const item = el("li", { className: "upload" },
    el("span", { className: "upload-name", text: file.name }),
    el("span", { className: "upload-size", text: formatSize(file.size) }),
    progress,
    status);
  return { item, progress, status };
}

async function upload(chosen) {
  if (!chosen.length) return;
  if (!me) {
    waitingUploads.push(...chosen);
    return;
  }
  const asked = generation;
  const { signal } = uploadsRunning;
  view.uploadsBox.hidden = false;
  const queue = chosen.map((file) => {
    const entry = uploadItem(file);
    view.uploads.append(entry.item);
    return { file, ...entry };
  });
  const next = async () => {
    while (queue.length) {
      const { file, item, progress, status } = queue.shift();
      status.textContent = "Uploading…";
      item.classList.add("busy");
      try {
        const stored = await uploadFile(file, {
          signal, onProgress: (fraction) => { progress.value = fraction; },
        });
        if (asked !== generation) return;
        progress.value = 1;
        item.classList.replace("busy", "done");
        status.textContent = "Uploaded";
        sinceListed.added.set(stored.id, stored);
        putFile(stored, { top: true });
        refreshUsage();
      } catch (error) {
        if (asked !== generation) return;
        item.classList.replace("busy", "failed");
        progress.hidden = true;
        status.textContent = error.message;
        status.setAttribute("role", "alert");
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_UPLOADS, queue.length) }, next));
}

function clearFinishedUploads() {
  for (const item of view.uploads.querySelectorAll(".upload.done, .upload.failed")) item.remove();
  view.uploadsBox.hidden = view.uploads.childElementCount === 0;
}

// Files dragged over the page while the view is shown: the whole view is
// the drop zone, highlighted while something is held over it.
let dragDepth = 0;

function carriesFiles(event) {
  return [...(event.dataTransfer?.types || [])].includes("Files");
}

function setDropping(on) {
  view.overlay.hidden = !on;
  view.root.classList.toggle("dropping", on);
}

function listenForDrops() {
  document.addEventListener("dragenter", (event) => {
    if (!shown || !carriesFiles(event)) return;
    dragDepth += 1;
    setDropping(true);
  });
  document.addEventListener("dragleave", (event) => {
    if (!shown || !carriesFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) setDropping(false);
  });
  document.addEventListener("dragover", (event) => {
    if (!shown || !carriesFiles(event)) return;
    event.preventDefault(); // allows the drop
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    if (!shown || !carriesFiles(event)) return;
    event.preventDefault(); // the browser would otherwise open the file
    dragDepth = 0;
    setDropping(false);
    upload([...event.dataTransfer.files]);
  });
}

// -- preview -----------------------------------------------------------------------

async function openPreview(id) {
  const asked = generation;
  let file = files.get(id);
  const { dialog, title, meta, body, note, download } = view.preview;
  if (!file) {
    try {
      file = await api("GET", `/api/v1/files/${encodeURIComponent(id)}`);
    } catch (error) {
      notify(error.message, "error");
      return;
    }
    if (asked !== generation) return;
  }
  title.textContent = file.name;
  meta.replaceChildren(`${formatSize(file.size)} · ${file.content_type} · `, timeElement(file.created_at));
  download.href = file.content_url;
  download.download = file.name;
  download.setAttribute("aria-label", `Download ${file.name}`);
  note.hidden = true;
  body.replaceChildren(el("p", { className: "hint", text: "Loading…" }));
  if (!dialog.open) dialog.showModal();
  if (file.content_type.startsWith("image/")) {
    body.replaceChildren(el("img", {
      src: file.content_url, alt: file.name,
      onerror: () => body.replaceChildren(el("p", { className: "hint", text: "This picture cannot be shown here. Download it to open it." })),
    }));
    return;
  }
  if (!isText(file)) {
    body.replaceChildren(el("p", { className: "hint", text: "No preview: this is not a text file. Download it to open it." }));
    return;
  }
  try {
    const response = await fetch(file.content_url, {
      credentials: "same-origin", headers: { Range: `bytes=0-${PREVIEW_BYTES - 1}` },
    });
    if (!response.ok) throw new Error(`The file could not be read (${response.status}).`);
    const bytes = await response.arrayBuffer();
    if (asked !== generation || !dialog.open || title.textContent !== file.name) return;
    const charset = /charset=([^;]+)/i.exec(response.headers.get("Content-Type") || "")?.[1] || "utf-8";
    // Cut short, the last character may be cut in two: "stream" leaves its
    // first bytes out instead of showing a replacement character.
    const options = { stream: file.size > PREVIEW_BYTES };
    let text;
    try {
      text = new TextDecoder(charset.trim()).decode(bytes.slice(0, PREVIEW_BYTES), options);
    } catch {
      text = new TextDecoder().decode(bytes.slice(0, PREVIEW_BYTES), options);
    }
    body.replaceChildren(el("pre", { className: "preview-text", tabIndex: 0, "aria-label": `Contents of ${file.name}`, text }));
    if (file.size > PREVIEW_BYTES) {
      note.textContent = `Showing the first ${formatSize(PREVIEW_BYTES)} of ${formatSize(file.size)}. Download it for the rest.`;
      note.hidden = false;
    }
  } catch (error) {
    body.replaceChildren(el("p", { className: "problem", text: error.message }));
  }
}

// Shows the Files view with that file's preview open (a search result).
export function openFile(id) {
  if (shown && view) {
    openPreview(id);
    return;
  }
  pendingPreview = id;
  location.hash = "#files";
}

// -- what app.js calls ---------------------------------------------------------------

export function initFiles() {
  view = build();
  listenForDrops();
}

export function showFiles(user) {
  if (!view) return;
  const first = !shown || me?.id !== user?.id;
  me = user;
  shown = true;
  if (first) {
    loadPage(true);
    refreshUsage();
  }
  if (waitingUploads.length) {
    const chosen = waitingUploads;
    waitingUploads = [];
    upload(chosen);
  }
  if (pendingPreview) {
    const id = pendingPreview;
    pendingPreview = null;
    openPreview(id);
  }
}

export function hideFiles() {
  shown = false;
  dragDepth = 0;
  if (view) {
    setDropping(false);
    if (view.preview.dialog.open) view.preview.dialog.close();
  }
}

export function forgetFiles() {
  hideFiles();
  generation += 1;
  uploadsRunning.abort();
  uploadsRunning = new AbortController();
  me = null;
  cursor = null;
  pendingPreview = null;
  waitingUploads = [];
  files.clear();
  if (view) {
    view.list.replaceChildren();
    view.uploads.replaceChildren();
    view.uploadsBox.hidden = true;
    view.more.hidden = true;
    view.empty.hidden = true;
    view.quotaText.textContent = "";
  }
}
