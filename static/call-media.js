// The camera and microphone for a call. Whatever the browser refuses, the
// call goes on with what is left (down to watching and listening only),
// and the person is told in plain words what happened and why.

import { preferredDevice } from "./call-devices.js";

// Forwarded as is to every other participant (the server does not
// transcode), so a modest size keeps five people's streams affordable.
const VIDEO = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };

// The constraints for a kind ("audio"/"video"): the device chosen last time
// if it is still there (ideal, not exact: else whichever there is).
function wanted(kind) {
  const deviceId = preferredDevice(kind);
  const base = kind === "video" ? VIDEO : {};
  if (!deviceId) return kind === "video" ? VIDEO : true;
  return { ...base, deviceId: { ideal: deviceId } };
}

// One device, exactly that one, for switching in a call: → MediaStreamTrack
// (throws what getUserMedia throws, with a sentence in .message).
export async function openDevice(kind, deviceId) {
  const device = { deviceId: { exact: deviceId } };
  const constraints = kind === "video" ? { video: { ...VIDEO, ...device } } : { audio: device };
  try {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    return stream.getTracks()[0];
  } catch (error) {
    throw new Error(`${problem(error, kind === "video" ? "camera" : "microphone")}.`);
  }
}

// → { stream (null when nothing could be opened), audio, video, notice }
// where audio and video say which devices are live, and notice is a
// sentence for the person ("" when everything worked).
export async function openLocalMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    // Browsers offer devices only to secure pages (HTTPS or this machine).
    return {
      stream: null, audio: false, video: false,
      notice: "This browser does not offer a camera or microphone to this page (it needs HTTPS), "
        + "so you joined to watch and listen only.",
    };
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: wanted("audio"), video: wanted("video"),
    });
    return { stream, audio: true, video: true, notice: "" };
  } catch {
    // One device missing, busy or refused fails the pair (the camera may be
    // blocked for the site and the microphone allowed): try each on its own.
  }
  const [audio, video] = await Promise.all([
    openOne({ audio: wanted("audio") }), openOne({ video: wanted("video") }),
  ]);
  const tracks = [...(audio.stream?.getTracks() || []), ...(video.stream?.getTracks() || [])];
  if (tracks.length === 0) return nothingOpened(audio.error, video.error);
  return {
    stream: new MediaStream(tracks),
    audio: Boolean(audio.stream),
    video: Boolean(video.stream),
    notice: audio.stream
      ? `${problem(video.error, "camera")}, so you joined with your microphone only.`
      : `${problem(audio.error, "microphone")}, so you joined with your camera only: nobody can hear you.`,
  };
}

async function openOne(constraints) {
  try {
    return { stream: await navigator.mediaDevices.getUserMedia(constraints), error: null };
  } catch (error) {
    return { stream: null, error };
  }
}

function nothingOpened(audioError, videoError) {
  const refused = (e) => e?.name === "NotAllowedError" || e?.name === "SecurityError";
  const notice = refused(audioError) && refused(videoError)
    ? "The browser blocked the camera and microphone for this site, so you joined to watch and "
      + "listen only. Allow them in the site settings (the icon left of the address) and join again."
    : `${problem(audioError, "microphone")} and ${lower(problem(videoError, "camera"))}, `
      + "so you joined to watch and listen only.";
  return { stream: null, audio: false, video: false, notice };
}

// "No camera was found", "Access to the microphone was refused", …
function problem(error, device) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return `Access to the ${device} was refused`;
    case "NotFoundError":
    case "OverconstrainedError":
      return `No ${device} was found`;
    case "NotReadableError":
    case "AbortError":
      return `The ${device} is in use by another program or could not be started`;
    default:
      return `The ${device} could not be opened${error?.name ? ` (${error.name})` : ""}`;
  }
}

function lower(sentence) {
  return sentence.charAt(0).toLowerCase() + sentence.slice(1);
}
