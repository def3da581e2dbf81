// What is code in a message text, cut by web/markup.js exactly as the server cuts it to find
// mentions (src/model.rs `pieces`): both run tests/fixtures/code_spans.json. If they differed,
// a colleague would be notified of a "mention" shown as code, or not notified of one shown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { splitCode } from '../../web/markup.js';

const cases = JSON.parse(readFileSync(new URL('../fixtures/code_spans.json', import.meta.url), 'utf8'));

test('the web client cuts code out of a text as the server does', () => {
  assert.ok(cases.length >= 10);
  for (const { text, pieces } of cases) {
    const got = splitCode(text).map((p) => ({ code: p.code, text: p.text }));
    assert.deepEqual(got, pieces, `cut of ${JSON.stringify(text)}`);
  }
});
