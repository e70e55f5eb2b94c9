// The camera and microphone pickers of the call panel: the devices the
// browser lists (with names only once it allowed one of them), the one in
// use selected, the choice remembered for the next call, and the lists kept
// current when a device is plugged in or out.

import { $, el } from "./ui.js";

const KEYS = { audio: "gortc.call.microphone", video: "gortc.call.camera" };
const SELECTS = { audio: "#call-mic-select", video: "#call-camera-select" };
const INPUTS = { audio: "audioinput", video: "videoinput" };
const NAMES = { audio: "Microphone", video: "Camera" };

// The device id chosen last time for "audio" or "video", or "".
export function preferredDevice(kind) {
  try {
    return localStorage.getItem(KEYS[kind]) || "";
  } catch {
    return ""; // storage blocked: no memory, no harm
  }
}

function rememberDevice(kind, deviceId) {
  try {
    localStorage.setItem(KEYS[kind], deviceId);
  } catch {
    // as above
  }
}

export class DevicePickers {
  // onChoose(kind, deviceId): the person picked another device.
  constructor(onChoose) {
    this.current = { audio: null, video: null }; // the tracks in use
    for (const kind of ["audio", "video"]) {
      $(SELECTS[kind]).addEventListener("change", (event) => {
        const deviceId = event.target.value;
        rememberDevice(kind, deviceId);
        onChoose(kind, deviceId);
      });
    }
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.refresh());
  }

  // tracks: {audio, video} in use now (null: none, and no picker for it).
  show(tracks) {
    this.current = { audio: tracks.audio || null, video: tracks.video || null };
    $("#call-devices").hidden = !this.current.audio && !this.current.video;
    return this.refresh();
  }

  hide() {
    this.current = { audio: null, video: null };
    $("#call-devices").hidden = true;
  }

  async refresh() {
    if (!this.current.audio && !this.current.video) return;
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      // Listing is refused: each picker shows only the device in use.
    }
    for (const kind of ["audio", "video"]) {
      const select = $(SELECTS[kind]);
      const track = this.current[kind];
      select.closest(".call-device").hidden = !track;
      if (!track) continue;
      const inUse = track.getSettings?.().deviceId || "";
      const listed = devices.filter((d) => d.kind === INPUTS[kind] && d.deviceId);
      if (!listed.some((d) => d.deviceId === inUse)) {
        listed.unshift({ deviceId: inUse, label: track.label });
      }
      select.replaceChildren(...listed.map((device, index) => el("option", {
        value: device.deviceId,
        text: device.label || `${NAMES[kind]} ${index + 1}`,
        selected: device.deviceId === inUse,
      })));
      select.value = inUse;
      select.disabled = listed.length < 2;
    }
  }
}
