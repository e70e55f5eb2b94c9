// Uploading into the person's file store, one request per file so each has
// its own progress and its own error. fetch() reports no upload progress,
// so this one request type goes through XMLHttpRequest.

import { ApiError } from "./api.js";

// Resolves with the stored file; rejects with an ApiError carrying the
// server's message (too large, over quota…), or a plain one offline.
// onProgress(fraction) is called as bytes leave the browser.
export function uploadFile(file, { onProgress = () => {}, signal } = {}) {
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
