// The WebSocket of a call hosted by another instance of the server: the
// chat's socket stays where it is, and this one carries that call's
// signalling (call.join, call.answer, call.mute, call.leave and what the
// host says back). The instance is on another host name, which our session
// cookie does not reach, so the socket is opened with a one-minute ticket
// our own server gives (POST /api/v1/ws/tickets).

import { api } from "./api.js";

// Opening takes a moment; past this the host is unreachable from here.
const OPEN_WAIT_MS = 10000;
const SESSION_ENDED = 4001;

export class CallSocket {
  // wsUrl: the call's ws_url; handlers: onFrame(frame), onClose(sessionEnded)
  // once, when a socket that was ready closes without our asking.
  constructor(wsUrl, handlers) {
    this.wsUrl = wsUrl;
    this.handlers = handlers;
    this.ws = null;
    this.closed = false;
  }

  // Resolves once the host said "ready"; rejects with a readable Error.
  async open() {
    const { ticket } = await api("POST", "/api/v1/ws/tickets");
    if (this.closed) throw new Error("the call ended");
    const url = new URL(this.wsUrl);
    url.searchParams.set("ticket", ticket);
    const ws = new WebSocket(url.href);
    this.ws = ws;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error("it did not answer in time."));
      }, OPEN_WAIT_MS);
      let ready = false;
      ws.addEventListener("message", (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch {
          return;
        }
        if (frame.type === "ready") {
          ready = true;
          clearTimeout(timer);
          resolve();
          return;
        }
        if (ready && !this.closed) this.handlers.onFrame(frame);
      });
      ws.addEventListener("close", (event) => {
        clearTimeout(timer);
        if (!ready) {
          reject(new Error(event.reason || "no connection could be made."));
          return;
        }
        if (this.closed) return;
        this.closed = true;
        this.handlers.onClose(event.code === SESSION_ENDED);
      });
    });
  }

  // Now, if open; false otherwise (the caller decides).
  send(frame) {
    if (this.closed || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // Frames already sent (a call.leave) still go out before the close.
  close() {
    this.closed = true;
    this.ws?.close(1000, "call over");
    this.ws = null;
  }
}
