// sound.js: a short chime for a DM or a mention the person is not looking at.
import { chat, presenceOf } from './state.js';

let audio = null; // made on the first click or keypress: browsers let pages play sound only after one

export function unlockAudio() {
  if (audio) { if (audio.state === 'suspended') audio.resume().catch(() => {}); return; }
  if (typeof AudioContext !== 'function') return;
  try { audio = new AudioContext(); } catch { /* no sound then */ }
}

let lastChime = 0; // ms: at most one chime every 2 s

export function chime() {
  if (!audio || presenceOf(chat.me.id).state === 'dnd') return; // do-not-disturb silences it
  const now = Date.now();
  if (now - lastChime < 2000) return;
  lastChime = now;
  try {
    const t = audio.currentTime;
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.frequency.setValueAtTime(880, t);
    o.frequency.setValueAtTime(660, t + 0.09);
    g.gain.setValueAtTime(0.0001, t);
    g.gain.exponentialRampToValueAtTime(0.12, t + 0.01);
    g.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
    o.connect(g).connect(audio.destination);
    o.start(t);
    o.stop(t + 0.32);
  } catch { /* sound is a nicety */ }
}
