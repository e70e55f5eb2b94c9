// Uploading into the person's file store, one request per file so each has
// its own progress and its own error. fetch() reports no upload progress,
// so these requests go through XMLHttpRequest.
//
// Where the server keeps files in an object store (GET /api/v1/server says
// direct_uploads), the bytes go straight to the store: ask the server for
// a presigned PUT, send the file there, then confirm (the server checks
// and files it). Otherwise they go through the server.

import { api, ApiError } from "./api.js";
import { loadServerInfo } from "./limits.js";

// The share of the progress bar the PUT fills; the rest is the server
// reading the bytes back when the upload is confirmed.
const SENT_SHARE = 0.95;
// A MIME type the server accepts as the PUT's Content-Type.
const MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

// Resolves with the stored file; rejects with an ApiError carrying the
// server's message (too large, over quota…), or a plain one offline.
// onProgress(fraction) is called as bytes leave the browser.
export async function uploadFile(file, { onProgress = () => {}, signal } = {}) {
  const info = await loadServerInfo();
  if (info?.direct_uploads) return uploadDirect(file, { onProgress, signal });
  return uploadThroughServer(file, { onProgress, signal });
}

async function uploadDirect(file, { onProgress, signal }) {
  if (signal?.aborted) throw cancelled();
  const asked = { name: file.name, size: file.size };
  if (MEDIA_TYPE.test(file.type)) asked.content_type = file.type;
  // Refused here (too large, over quota) before a byte is sent.
  const ticket = await api("POST", "/api/v1/files/direct-uploads", asked);
  await put(ticket, file, { onProgress: (fraction) => onProgress(fraction * SENT_SHARE), signal });
  if (signal?.aborted) throw cancelled();
  const stored = await api("POST", "/api/v1/files/direct-uploads/confirm", { upload_id: ticket.upload_id });
  onProgress(1);
  return stored;
}

// The presigned request to the object store: another origin, no cookie.
function put(ticket, file, { onProgress, signal }) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(ticket.method, ticket.url);
    for (const [name, value] of Object.entries(ticket.headers || {})) request.setRequestHeader(name, value);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else reject(new Error(`The file store refused the upload (status ${request.status}).`));
    });
    request.addEventListener("error", () => reject(new Error(
      "The upload failed: the file store could not be reached (or does not allow this site: see its CORS settings).",
    )));
    request.addEventListener("abort", () => reject(cancelled()));
    signal?.addEventListener("abort", () => request.abort());
    request.send(file);
  });
}

function cancelled() {
  return new Error("The upload was cancelled.");
}

function uploadThroughServer(file, { onProgress, signal }) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Error("The upload was cancelled."));
      return;
    }
    const request = new XMLHttpRequest();
    request.open("POST", "/api/v1/files");
    request.withCredentials = true;
    request.responseType = "text";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      let body = null;
      try {
        body = request.responseText ? JSON.parse(request.responseText) : null;
      } catch {
        // A proxy's HTML error page, say: the status tells what happened.
      }
      if (request.status >= 200 && request.status < 300) {
        onProgress(1);
        resolve(body);
      } else {
        reject(new ApiError(request.status, body));
      }
    });
    request.addEventListener("error", () => reject(new Error("The upload failed: the server could not be reached.")));
    request.addEventListener("abort", () => reject(new Error("The upload was cancelled.")));
    signal?.addEventListener("abort", () => request.abort());
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
}

// "1.2 MB", "340 KB", "12 bytes": sizes as people read them.
export function formatSize(bytes) {
  if (bytes < 1000) return `${bytes} byte${bytes === 1 ? "" : "s"}`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1000;
    unit += 1;
  } while (value >= 1000 && unit < units.length - 1);
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}
