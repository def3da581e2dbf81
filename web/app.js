// app.js: the entry point of the Hallway web client (loaded by index.html as an ES module).
// Binds the page's fixed controls and starts: the setup form, or the chat if signed in.
// Module map: state.js (what the tab knows), api.js (the only module that talks to the
// server), live.js (frames from the server), history.js (pages of messages), composer.js,
// search.js, switcher.js (Ctrl+K), autocomplete.js (@ and #), keyboard.js (the list by keyboard, announcements), theme.js, conversation.js (opening and leaving), signin.js, sound.js, views/ (sidebar,
// header, messages, dialogs, review, admin and its sections in admin/), dom.js (element helpers), markup.js (message text).
import * as api from './api.js';
import { bindComposer } from './composer.js';
import { bindRoomRefs } from './conversation.js';
import { $, icon } from './dom.js';
import { markRead } from './history.js';
import { bindSearch, closeSearch, focusSearch } from './search.js';
import { bindSignIn, enter, showSetup, showSignup, signedOut } from './signin.js';
import { unlockAudio } from './sound.js';
import { openSwitcher } from './switcher.js';
import { bindTheme } from './theme.js';
import { bindKeyboard } from './keyboard.js';
import { activity, chat, conn, ui } from './state.js';
import { pickPeople, showAddUser, showCreateRoom, showDirectory, showStatus } from './views/dialogs.js';
import { bindAdmin } from './views/admin.js';
import { bindReview } from './views/review.js';
import { messagesScrolled } from './views/messages.js';
import { bindPeopleFilter, renderMe, renderSidebar } from './views/sidebar.js';

const IDLE_MS = 5 * 60 * 1000;

/** The page's fixed controls, bound once. */
function bind() {
  bindTheme();
  for (const b of document.querySelectorAll('[data-icon]')) b.append(icon(b.dataset.icon));
  for (const b of document.querySelectorAll('dialog [data-close]')) b.addEventListener('click', () => b.closest('dialog').close());
  bindSignIn();

  bindComposer();
  bindKeyboard();
  bindPeopleFilter();
  bindRoomRefs();

  $('messages').addEventListener('scroll', messagesScrolled, { passive: true });

  $('btn-signout').addEventListener('click', async () => {
    // The server closes this tab's socket as it ends the session: that must not sign out first.
    if (conn.live) conn.live.stop();
    try { localStorage.removeItem('hallway.conv'); } catch { /* private mode */ }
    try { await api.logout(); } catch { /* signed out locally all the same */ }
    signedOut('You signed out.');
  });
  $('btn-add-user').addEventListener('click', showAddUser);
  $('btn-create-room').addEventListener('click', showCreateRoom);
  $('btn-directory').addEventListener('click', showDirectory);
  $('btn-new-dm').addEventListener('click', () => pickPeople('dm'));
  $('btn-status').addEventListener('click', showStatus);
  for (const b of document.querySelectorAll('.menu-toggle')) b.addEventListener('click', () => document.body.classList.toggle('nav-open'));
  bindSearch();
  bindReview();
  bindAdmin();
  document.addEventListener('keydown', (e) => {
    if ($('chat').hidden || e.target.closest?.('dialog')) return;
    const typing = e.target.matches?.('input, textarea, select, [contenteditable]');
    if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && (e.key === 'k' || e.key === 'K')) { e.preventDefault(); openSwitcher(); }
    else if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); focusSearch(); }
    else if (e.key === 'Escape' && ui.search) { e.preventDefault(); closeSearch(); }
  });
  $('scrim').addEventListener('click', () => document.body.classList.remove('nav-open'));

  // Idle detection: 5 minutes without input, or hidden for 5 minutes.
  const active = () => {
    activity.lastInput = Date.now();
    if (activity.idle) { activity.idle = false; if (conn.online) conn.live.send({ type: 'presence', idle: false }); }
  };
  for (const ev of ['mousemove', 'mousedown', 'keydown', 'touchstart', 'wheel']) window.addEventListener(ev, active, { passive: true, capture: true });
  for (const ev of ['pointerdown', 'keydown']) window.addEventListener(ev, unlockAudio, { passive: true, capture: true });
  window.addEventListener('focus', () => { active(); markRead(chat.convs.get(ui.current)); });
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) activity.hiddenSince = Date.now();
    else { activity.hiddenSince = null; active(); markRead(chat.convs.get(ui.current)); }
  });
  setInterval(() => {
    const now = Date.now();
    if (!activity.idle && (now - activity.lastInput >= IDLE_MS || (activity.hiddenSince != null && now - activity.hiddenSince >= IDLE_MS))) {
      activity.idle = true;
      if (conn.online) conn.live.send({ type: 'presence', idle: true });
    }
    if (chat.me) { renderSidebar(); renderMe(); } // statuses that expired
  }, 30000);
}

function boot() {
  bind();
  if (location.pathname === '/setup') showSetup();
  else if (location.pathname === '/signup') showSignup();
  else enter();
}

boot();
