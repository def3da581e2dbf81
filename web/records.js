// records.js: what a conversation keeps, said in words (docs/protocol.md, "Records"): the
// banner's sentence, the header chip's short form, the system line's phrase, and whose choice
// holds a DM or group where it is. Plain functions of the server's objects: no DOM here, so
// the wording is the same in every view.

const days = (n) => `${n} day${n === 1 ? '' : 's'}`;

/** The banner's sentence for a Records object (the protocol's "say it as" column). */
export function keepText(r) {
  switch (r.keep) {
    case 'nothing': return 'Not recorded — messages disappear when everyone has closed the tab';
    case 'until_read': return 'Kept until everyone has read it' + (r.days ? ` (at most ${days(r.days)})` : '');
    case 'days': return `Kept for ${days(r.days)}`;
    case 'archive': return 'Archived for compliance review — an authorized reviewer can read this conversation';
    default: return 'Kept';
  }
}

/** The header chip's few words. */
export function keepShort(r) {
  switch (r.keep) {
    case 'nothing': return 'Not recorded';
    case 'until_read': return 'Until read';
    case 'days': return days(r.days);
    case 'archive': return 'Archived';
    default: return 'Kept';
  }
}

/** The end of a system line: "NAME set this conversation to: kept for 7 days". */
export function keepPhrase(r) {
  switch (r.keep) {
    case 'nothing': return 'not recorded';
    case 'until_read': return 'kept until everyone has read it' + (r.days ? ` (at most ${days(r.days)})` : '');
    case 'days': return `kept for ${days(r.days)}`;
    case 'archive': return 'archived for compliance review';
    default: return 'kept';
  }
}

/**
 * Orders choices as a DM or group takes the least of them: nothing < until read < fewer days
 * < more days < kept. A member who never chose counts as kept.
 */
export function rank(r) {
  if (!r) return Infinity;
  if (r.keep === 'nothing') return 0;
  if (r.keep === 'until_read') return 1;
  if (r.keep === 'days') return 2 + Math.min(r.days || 0, 1e6) / 1e7;
  return Infinity;
}

/** True when the server decides for every conversation and nobody can change it. */
export const serverDecides = (policy) => policy?.policy === 'archive' || policy?.policy === 'off';

/**
 * Who holds the conversation where it is, for the banner: "set by Alice" in a room, "chosen by
 * Bob" in a DM or group (whose choice is the least), or the server's part in it.
 * `name(id)` names a user; `me` is this user's id.
 */
export function whoText(c, policy, me, name) {
  const r = c.records;
  const who = (id) => (id === me ? 'you' : name(id));
  if (serverDecides(policy) || r.keep === 'archive') return "set by the server's administrator";
  if (c.kind === 'dm' || c.kind === 'group') {
    const choices = (r.choices || []).filter((ch) => c.members.includes(ch.user));
    const least = Math.min(...choices.map(rank));
    if (least === Infinity) return policy?.policy === 'retain' ? `this server keeps at most ${days(policy.days)}` : "this server's default";
    const holders = choices.filter((ch) => rank(ch) === least).map((ch) => who(ch.user));
    return `chosen by ${holders.join(' and ')}`;
  }
  if (r.set_by != null) return `set by ${who(r.set_by)}`;
  return policy?.policy === 'retain' && r.keep === 'days' ? `this server keeps at most ${days(policy.days)}` : "this server's default";
}
