// Who is speaking: four times a second, the audio energy each person's
// microphone delivered since the last look (CallPeer.audioLevels). Someone
// louder than a murmur speaks, and stays "speaking" for a moment after the
// last loud sample, so the highlight follows sentences, not syllables.

const POLL_MS = 250;
const HOLD_MS = 900;
// RMS of the audio level (0…1): quiet rooms measure below 0.005, speech
// well above 0.03.
const LOUD = 0.02;

export class SpeakerWatch {
  // levels(): Promise(Map id → level); onChange(Set of ids now speaking).
  constructor(levels, onChange) {
    this.levels = levels;
    this.onChange = onChange;
    this.lastLoud = new Map(); // id → time of the last loud sample
    this.speaking = new Set();
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.busy = false;
  }

  async poll() {
    if (this.busy || this.timer === null) return;
    this.busy = true;
    try {
      const now = performance.now();
      for (const [id, level] of await this.levels()) {
        if (level >= LOUD) this.lastLoud.set(id, now);
      }
      const speaking = new Set(
        [...this.lastLoud].filter(([, at]) => now - at <= HOLD_MS).map(([id]) => id),
      );
      const changed = speaking.size !== this.speaking.size
        || [...speaking].some((id) => !this.speaking.has(id));
      this.speaking = speaking;
      if (changed && this.timer !== null) this.onChange(speaking);
    } catch {
      // A connection closing under us: the next look, or stop(), follows.
    } finally {
      this.busy = false;
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.speaking.size) this.onChange(new Set());
    this.speaking = new Set();
  }
}
