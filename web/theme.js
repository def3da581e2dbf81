// theme.js: light or dark. By default the page follows the system (index.html links
// dark.css for prefers-color-scheme: dark); the sidebar's button chooses light, dark or the
// system for this browser (localStorage), by switching that stylesheet on or off.
import { $, icon } from './dom.js';

const KEY = 'hallway.theme';
const CHOICES = ['system', 'dark', 'light'];
const LABEL = { system: 'Theme: as the system', dark: 'Theme: dark', light: 'Theme: light' };
const ICON = { system: 'monitor', dark: 'moon', light: 'sun' };

export function themeChoice() {
  let v = null;
  try { v = localStorage.getItem(KEY); } catch { /* private mode */ }
  return CHOICES.includes(v) ? v : 'system';
}

/** Shows the page in `choice` ('system', 'dark' or 'light'), and keeps it for this browser. */
export function setTheme(choice) {
  const link = $('dark-css');
  if (link) link.media = choice === 'dark' ? 'all' : choice === 'light' ? 'not all' : '(prefers-color-scheme: dark)';
  document.documentElement.dataset.theme = choice;
  try { if (choice === 'system') localStorage.removeItem(KEY); else localStorage.setItem(KEY, choice); } catch { /* private mode */ }
  const b = $('btn-theme');
  if (b) {
    const next = CHOICES[(CHOICES.indexOf(choice) + 1) % CHOICES.length];
    b.replaceChildren(icon(ICON[choice]));
    b.title = `${LABEL[choice]} (click for ${next})`;
    b.setAttribute('aria-label', `${LABEL[choice]}; switch to ${next}`);
    b.dataset.theme = choice;
  }
}

export function bindTheme() {
  setTheme(themeChoice());
  $('btn-theme').addEventListener('click', () => {
    const now = themeChoice();
    setTheme(CHOICES[(CHOICES.indexOf(now) + 1) % CHOICES.length]);
  });
}
