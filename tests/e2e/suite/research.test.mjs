// End to end: POST /v1/research on one runtime (E2E_RUNTIME=cloudflare|spin), the built Wasm
// against the simulator's model (which plans sub-questions for the planner's prompt), Tavily
// and Brave. Search faults are directives in the question; the planner keeps them in every
// sub-question, so they reach every search.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { events, startPlatform, stopAll, token } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
let base;
const auth = () => ({ authorization: `Bearer ${token()}`, 'content-type': 'application/json' });
const unique = (text) => `${text} ${randomUUID()}`;

async function research(content, extra = {}, path = '/v1/research') {
  return fetch(`${base}${path}`, {
    method: 'POST', headers: auth(), body: JSON.stringify({ messages: [{ role: 'user', content }], ...extra }),
  });
}

describe(`research on ${runtime}`, () => {
  before(async () => {
    ({ base } = await startPlatform(runtime, {
      ATTEMPT_TIMEOUT_MS: '1500', MAX_RETRIES: '1', RETRY_BACKOFF_MS: '10', RETRY_AFTER_CAP_MS: '1500',
    }));
  });
  after(stopAll);

  test('plans, searches each sub-question and writes a cited report', async () => {
    const res = await research(unique('how do tides work'), { max_sub_questions: 3, max_results: 2 });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.object, 'research.answer');
    assert.equal(body.sub_questions.length, 3);
    assert.equal(body.searches.length, 3);
    assert.ok(body.searches.every((s) => s.provider === 'tavily' && s.results === 2), JSON.stringify(body.searches));
    assert.equal(body.citations.length, 6, 'two pages per sub-question, all distinct');
    body.citations.forEach((c, i) => { assert.equal(c.index, i + 1); assert.match(c.url, /^https:\/\/example\.com\//); });
    assert.deepEqual(body.agent.steps.map((s) => s.name), ['plan', 'search', 'search', 'search', 'write']);
    assert.ok(body.usage.total_tokens > 0);
    assert.match(body.message.content, /^Hello from openai/);
  });

  test('progress streams as plan, search, read, write, then the report', async () => {
    const res = await research(unique('history of the printing press'), { stream: true, max_sub_questions: 2 });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const evs = await events(res);
    const names = evs.map((e) => e.name);
    const at = (n) => names.indexOf(n);
    assert.equal(names[0], 'start');
    assert.ok(at('plan') < at('search') && at('search') < at('read') && at('read') < at('write') && at('write') < at('delta'), names.join(','));
    assert.equal(names.filter((n) => n === 'search').length, 2);
    assert.deepEqual(names.slice(-2), ['usage', 'done']);
    const done = evs.at(-1).data;
    assert.ok(done.citations.length > 0);
    assert.equal(done.message, undefined);
  });

  test('Tavily down: every search falls back to Brave', async () => {
    const res = await research(unique('sim:tavily:status=503 solar sails'), { max_sub_questions: 2 });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.ok(body.searches.every((s) => s.provider === 'brave'), JSON.stringify(body.searches));
    assert.ok(body.citations.length > 0);
  });

  test('through /v1/process with a named mode, and bad bodies get 422', async () => {
    const res = await research(unique('compare rust and go'), { mode: 'research', max_sub_questions: 1 }, '/v1/process');
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.routing.mode, 'research');
    assert.equal(body.sub_questions.length, 1);
    const bad = await research('x', { max_sub_questions: 40 });
    assert.equal(bad.status, 422);
    assert.equal((await bad.json()).error.code, 'validation_failed');
  });
});
