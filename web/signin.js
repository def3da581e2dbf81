// signin.js: the sign-in and setup forms, starting the chat for a session, and going back
// to the sign-in form when the session ends.
import * as api from './api.js';
import { $, accountFields, errText, formError, fullFmt } from './dom.js';
import { onFrame } from './live.js';
import { closeSearch } from './search.js';
import { chat, conn, ui } from './state.js';
import { rowCache } from './views/messages.js';
import { closeAdmin, showAdminEntry } from './views/admin.js';
import { closeReview, showRoleEntries } from './views/review.js';
import { forgetSidebar, renderMe, setFavicon } from './views/sidebar.js';

/**
 * The notice over the forms: under an archiving server, people are told before they sign in
 * (and so before their first message) that a reviewer can read what they write.
 */
function drawPolicyNotice(policy) {
  const n = $('auth-records');
  const archive = policy?.policy === 'archive';
  n.textContent = archive ? 'This server archives every conversation for compliance review.' : '';
  n.hidden = !archive;
}

/** Shows a form; `policy` is the records Policy when the caller just asked for it. */
function showAuth(which, note, policy) {
  if (policy !== undefined) drawPolicyNotice(policy);
  else api.currentSession().then((s) => drawPolicyNotice(s?.records), () => { /* the form works without it */ });
  $('chat').hidden = true;
  $('auth').hidden = false;
  $('setup-form').hidden = which !== 'setup';
  $('signin-form').hidden = which !== 'signin';
  $('signup-form').hidden = which !== 'signup';
  const f = $(`${which}-form`);
  formError(f, '');
  if (which === 'signin') {
    $('signin-note').textContent = note || '';
    f.elements.password.value = '';
    // Offered only where the server takes sign-ups without a link (open on the office network).
    $('signin-signup').hidden = true;
    api.maySignUp().then((r) => { $('signin-signup').hidden = !r?.allowed; }, () => {});
  }
  f.querySelector('input').focus();
}

let bannerTimer = null;

function startChat(user) {
  chat.me = user;
  $('auth').hidden = true;
  $('chat').hidden = false;
  $('btn-add-user').hidden = user.role !== 'admin';
  showRoleEntries(user);
  showAdminEntry(user);
  renderMe();
  conn.live = new api.Live({
    onFrame,
    onStatus: (st) => {
      const b = $('banner');
      clearTimeout(bannerTimer);
      if (st === 'open') { b.hidden = true; return; }
      conn.online = false;
      b.textContent = st === 'connecting' ? 'Connecting…' : st === 'restarting' ? 'The server is restarting; reconnecting…' : 'Reconnecting…';
      // A first connection normally takes milliseconds: show the banner only if it does not.
      if (st === 'connecting') bannerTimer = setTimeout(() => { b.hidden = conn.online; }, 1000);
      else b.hidden = false;
    },
    onSignedOut: (why) => signedOut(why === 'account_disabled'
      ? 'Your account was disabled. Ask your admin if that is a mistake.'
      : 'You were signed out. Sign in again to continue.'),
  });
  conn.live.start();
}

function resetState() {
  api.endSession();
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  if (conn.live) conn.live.stop();
  clearTimeout(bannerTimer);
  $('banner').hidden = true;
  closeSearch(false);
  closeReview();
  closeAdmin();
  $('search-input').value = '';
  chat.me = null;
  chat.policy = null;
  Object.assign(conn, { live: null, online: false });
  Object.assign(ui, { current: null, editing: null, wantOpen: null });
  chat.users.clear(); chat.presence.clear(); chat.convs.clear(); ui.typing.clear(); ui.drafts.clear();
  rowCache.clear();
  forgetSidebar();
  $('messages').replaceChildren();
  document.title = 'Hallway';
  setFavicon(0);
}

export function signedOut(note) {
  resetState();
  showAuth('signin', note);
}

export async function showSetup() {
  let token = location.hash.slice(1);
  try { token = decodeURIComponent(token); } catch { /* a mangled link: the server says bad_token */ }
  const f = $('setup-form');
  try {
    const { needed } = await api.setupNeeded();
    if (!needed) {
      history.replaceState(null, '', '/');
      return enter('Hallway is already set up. Sign in with your account.');
    }
  } catch { /* try the form anyway */ }
  showAuth('setup');
  if (!token) formError(f, 'This setup link is incomplete: open the full link the server printed.');
  f.onsubmit = async (e) => {
    e.preventDefault();
    const u = accountFields(f);
    if (!u) return;
    const btn = f.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const { user } = await api.setup(token, u.name, u.display_name, u.password);
      history.replaceState(null, '', '/');
      startChat(user);
    } catch (err) {
      const msg = {
        bad_token: 'This setup link is not valid. Open the exact link the server printed.',
        setup_done: 'Setup was already done. Sign in with your account.',
      }[err.code] || errText(err);
      if (err.code === 'setup_done') { history.replaceState(null, '', '/'); showAuth('signin', msg); } else formError(f, msg);
    } finally {
      btn.disabled = false;
    }
  };
}

const ROLE_WORD = { member: 'a member', reviewer: 'a reviewer', admin: 'an admin' };

/** The sign-up form: `/signup#TOKEN` from an invite link, or `/signup` where sign-up is open. */
export async function showSignup() {
  let token = location.hash.slice(1);
  try { token = decodeURIComponent(token); } catch { /* a mangled link: the server says bad_token */ }
  const f = $('signup-form');
  showAuth('signup');
  const note = $('signup-note');
  note.textContent = '';
  let asked = null;
  try { asked = await api.maySignUp(token); } catch (e) { formError(f, errText(e)); }
  if (asked && !asked.allowed) formError(f, asked.message || 'This server does not take sign-ups.');
  else if (asked) {
    const until = asked.expires ? ` This link works until ${fullFmt.format(asked.expires)}.` : '';
    note.textContent = `You join as ${ROLE_WORD[asked.role] || asked.role}.${until}`;
  }
  f.onsubmit = async (e) => {
    e.preventDefault();
    const u = accountFields(f);
    if (!u) return;
    const btn = f.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const { user } = await api.signUp({ invite: token || null, ...u });
      f.reset();
      history.replaceState(null, '', '/');
      startChat(user);
    } catch (err) {
      formError(f, err.code === 'name_taken' ? 'That sign-in name is taken: choose another.' : errText(err));
    } finally {
      btn.disabled = false;
    }
  };
}

export function bindSignIn() {
  const f = $('signin-form');
  let lockTimer = null;
  f.onsubmit = async (e) => {
    e.preventDefault();
    const name = f.elements.name.value.trim().toLowerCase();
    if (!name || !f.elements.password.value) { formError(f, 'Enter your name and password.'); return; }
    const btn = f.querySelector('button[type=submit]');
    btn.disabled = true;
    formError(f, '');
    try {
      const { user } = await api.login(name, f.elements.password.value);
      f.elements.password.value = '';
      startChat(user);
      btn.disabled = false;
    } catch (err) {
      btn.disabled = false;
      if (err.code === 'bad_credentials') formError(f, 'Wrong name or password.');
      else if (err.code === 'account_disabled') formError(f, 'Your account is disabled. Ask your admin to enable it.');
      else if (err.code === 'too_many_attempts') {
        let left = Math.ceil(Number(err.retryAfter) || 1);
        const tick = () => {
          formError(f, `Too many failed attempts. Try again in ${left} second${left === 1 ? '' : 's'}.`);
          btn.disabled = left > 0;
          if (left-- <= 0) { clearInterval(lockTimer); formError(f, 'You can try again now.'); }
        };
        clearInterval(lockTimer);
        tick();
        lockTimer = setInterval(tick, 1000);
      } else formError(f, errText(err));
    }
  };
}

/** Opens the chat when the session is valid, else the sign-in form (with an optional note). */
export async function enter(note = '') {
  let s;
  try {
    s = await api.currentSession();
  } catch {
    showAuth('signin', 'Cannot reach the server right now.', null);
    return;
  }
  if (s && s.signed_in && s.user) startChat(s.user);
  else showAuth('signin', note, s?.records ?? null);
}
