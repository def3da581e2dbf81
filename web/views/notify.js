// views/notify.js: the notifications dialog, opened from the bell in a conversation's
// header: desktop notifications on or off for this browser (asked for only from here), and
// this conversation's level (all, mentions, nothing). Where the page is not a secure
// context, it says why notifications cannot work and links to the server's /ca page.
import { $, h, toast } from '../dom.js';
import { enabled, levelOf, setEnabled, setLevel, unavailable } from '../notify.js';
import { convName } from '../state.js';

const WHY = {
  insecure: 'Browsers show desktop notifications only on a secure page: HTTPS, or Hallway on this same machine. ',
  unsupported: 'This browser cannot show desktop notifications.',
};

function renderDesktop() {
  const state = $('notify-desktop-state');
  const toggle = $('notify-desktop-toggle');
  const why = unavailable();
  toggle.hidden = !!why;
  if (why === 'insecure') {
    state.replaceChildren(WHY.insecure, 'Ask your admin to serve Hallway over HTTPS, then install the office certificate: ',
      h('a', { href: '/ca', target: '_blank', rel: 'noopener', text: 'how to install it' }), '.');
  } else if (why) {
    state.textContent = WHY[why];
  } else if (Notification.permission === 'denied') {
    state.textContent = 'This browser blocks notifications from Hallway. Allow them in the site settings (the icon left of the address), then come back here.';
    toggle.hidden = true;
  } else {
    state.textContent = enabled() ? 'Desktop notifications are on in this browser. Do not disturb silences them.' : 'Desktop notifications are off in this browser.';
    toggle.textContent = enabled() ? 'Turn off' : 'Turn on desktop notifications';
  }
}

/** Opens the dialog for conversation `c`; `changed` runs after a new level is saved. */
export function showNotify(c, changed) {
  const d = $('dlg-notify');
  const f = d.querySelector('form');
  renderDesktop();
  $('notify-levels-legend').textContent = `Notify me in ${convName(c)} about`;
  const level = levelOf(c);
  for (const input of f.elements.level) input.checked = input.value === level;
  $('notify-desktop-toggle').onclick = async () => {
    // The browser asks the person here, in answer to this click, never on page load.
    const on = await setEnabled(!enabled());
    renderDesktop();
    if (on) toast('Desktop notifications are on.');
  };
  f.onsubmit = (e) => {
    e.preventDefault();
    setLevel(c, f.elements.level.value);
    d.close();
    changed();
  };
  d.showModal();
}
