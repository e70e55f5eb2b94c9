// The real-time connection: one WebSocket, authenticated by the session
// cookie (same origin), reopened with exponential backoff when it drops.

const SESSION_ENDED = 4001;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;

export class ChatSocket {
  // handlers: onOpen(readyFrame), onFrame(frame), onDown(closeEvent),
  // onSessionEnded(), onRetry(attempt, delayMs)
  constructor(handlers) {
    this.handlers = handlers;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.ready = false;
  }

  get url() {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/ws`;
  }

  start() {
    this.stopped = false;
    if (!this.ws) this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws) ws.close(1000, "signed out");
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "ready") {
        this.attempt = 0;
        this.ready = true;
        this.handlers.onOpen(frame);
        return;
      }
      this.handlers.onFrame(frame);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      const wasReady = this.ready;
      this.ws = null;
      this.ready = false;
      if (this.stopped) return;
      if (event.code === SESSION_ENDED) {
        this.stopped = true;
        this.handlers.onSessionEnded();
        return;
      }
      this.handlers.onDown(event, wasReady);
      this.retry();
    });
  }

  retry() {
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    const delay = base / 2 + (Math.random() * base) / 2; // jitter: many clients, one restart
    this.attempt += 1;
    this.handlers.onRetry?.(this.attempt, delay);
    this.timer = setTimeout(() => this.open(), delay);
  }

  // Now, if the connection is ready; false otherwise (the caller decides).
  send(frame) {
    if (!this.ready || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  // Skips the remaining wait, e.g. when the browser comes back online.
  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    this.open();
  }
}
