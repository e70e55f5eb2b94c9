// The one real-time connection of the page, shared by every view. It owns
// the socket (socket.js reopens it with backoff) and hands each frame to
// the feature modules that registered for its type, so no feature routes
// another's frames. Signed out, it is closed and every registration stays:
// features register once at start-up, not per sign-in.

import { ChatSocket } from "./socket.js";

const byType = new Map(); // frame type → [handler]
const errorClaims = []; // handlers that may claim an error frame (return true)
let unclaimedError = () => {};
const listeners = { ready: [], down: [], retry: [], sessionEnded: [] };

let socket = null;
let generation = 0; // counts the socket's "ready"s since sign-in

// handler(frame) for every frame of that type.
export function onFrame(type, handler) {
  if (!byType.has(type)) byType.set(type, []);
  byType.get(type).push(handler);
}

// Error frames answer something a feature sent (by its client_id): each
// claimant returns true for its own; the rest go to the fallback.
export function claimErrors(handler) {
  errorClaims.push(handler);
}

export function onUnclaimedError(handler) {
  unclaimedError = handler;
}

// ready(generation): the socket is (again) ready; down(wasReady);
// retry(attempt, delayMs); sessionEnded(): the server ended the sign-in.
export function onLifecycle(event, handler) {
  listeners[event].push(handler);
}

function emit(event, ...args) {
  for (const handler of listeners[event]) handler(...args);
}

function dispatch(frame) {
  if (frame.type === "error") {
    if (!errorClaims.some((claim) => claim(frame) === true)) unclaimedError(frame);
    return;
  }
  for (const handler of byType.get(frame.type) || []) handler(frame);
}

export function startRealtime() {
  if (socket) return;
  generation = 0;
  socket = new ChatSocket({
    onOpen: () => {
      generation += 1;
      emit("ready", generation);
    },
    onFrame: dispatch,
    onDown: (_event, wasReady) => emit("down", wasReady),
    onRetry: (attempt, delay) => emit("retry", attempt, delay),
    onSessionEnded: () => {
      socket = null;
      emit("sessionEnded");
    },
  });
  socket.start();
}

export function stopRealtime() {
  socket?.stop();
  socket = null;
  generation = 0;
}

// Sends now if the socket is ready; false otherwise (the caller decides).
export function send(frame) {
  return Boolean(socket?.send(frame));
}

export function isReady() {
  return Boolean(socket?.ready);
}

export function readyCount() {
  return generation;
}

window.addEventListener("online", () => socket?.reconnectNow());
