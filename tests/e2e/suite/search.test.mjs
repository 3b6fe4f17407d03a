// End to end: POST /v1/search on one runtime (E2E_RUNTIME=cloudflare|spin), the built Wasm
// against the simulator's Tavily, Brave and model APIs. Search faults are directives in the
// question (the query), e.g. `sim:tavily:status=503`; every test uses its own text.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { events, startPlatform, stopAll, token } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
let base;
const auth = () => ({ authorization: `Bearer ${token()}`, 'content-type': 'application/json' });
const unique = (text) => `${text} ${randomUUID()}`;

async function search(content, extra = {}) {
  const res = await fetch(`${base}/v1/search`, {
    method: 'POST', headers: auth(), body: JSON.stringify({ messages: [{ role: 'user', content }], ...extra }),
  });
  return { res, body: await res.json() };
}

describe(`search on ${runtime}`, () => {
  before(async () => {
    ({ base } = await startPlatform(runtime, {
      ATTEMPT_TIMEOUT_MS: '1500', MAX_RETRIES: '1', RETRY_BACKOFF_MS: '10', RETRY_AFTER_CAP_MS: '1500',
    }));
  });
  after(stopAll);

  test('the answer cites the pages Tavily found', async () => {
    const { res, body } = await search(unique('edge wasm runtimes'));
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.object, 'search.answer');
    assert.equal(body.mode, 'search');
    assert.equal(body.provider, 'openai');
    assert.match(body.message.content, /^Hello from openai/);
    assert.ok(body.usage.total_tokens > 0);
    assert.equal(body.search.provider, 'tavily');
    assert.equal(body.search.attempts, 1);
    assert.equal(res.headers.get('x-search-provider'), 'tavily');
    assert.ok(body.citations.length >= 3 && body.citations.length <= 5, JSON.stringify(body.citations));
    body.citations.forEach((c, i) => {
      assert.equal(c.index, i + 1);
      assert.match(c.url, new RegExp(`^https://example\\.com/edge-wasm-runtimes-[0-9a-f-]+/${i + 1}$`));
      assert.match(c.title, /^edge wasm runtimes .* — result \d$/);
    });
    assert.equal(body.search.results, body.citations.length);
    assert.ok(!JSON.stringify(body).includes('sim-key'));
  });

  test('max_results bounds the sources; a bad value is a 422', async () => {
    const { body } = await search(unique('two sources'), { max_results: 2 });
    assert.equal(body.citations.length, 2);
    const bad = await search('x', { max_results: 11 });
    assert.equal(bad.res.status, 422);
    assert.equal(bad.body.error.code, 'validation_failed');
  });

  test('a stream sends start, search, citations, deltas, usage and done', async () => {
    const res = await fetch(`${base}/v1/search`, {
      method: 'POST', headers: auth(), body: JSON.stringify({ messages: [{ role: 'user', content: unique('stream search') }], stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const evs = await events(res);
    const names = evs.map((e) => e.name).filter((n) => n !== 'delta');
    assert.deepEqual(names, ['start', 'search', 'citations', 'usage', 'done']);
    const deltas = evs.filter((e) => e.name === 'delta');
    assert.ok(deltas.length >= 3);
    assert.ok(evs.indexOf(deltas[0]) > 2 && evs.indexOf(deltas.at(-1)) < evs.length - 2, 'deltas sit between citations and usage');
    assert.match(deltas.map((e) => e.data.text).join(''), /^Hello from openai/);
    assert.equal(evs[1].data.provider, 'tavily');
    const done = evs.at(-1).data;
    assert.deepEqual(done.citations, evs[2].data.citations);
    assert.equal(done.search.provider, 'tavily');
    assert.equal(done.object, 'search.answer');
    assert.equal(done.message, undefined);
  });

  test('Tavily down: Brave answers, and the attempts say so', async () => {
    const { res, body } = await search(unique('tavily down sim:tavily:status=503'));
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.search.provider, 'brave');
    assert.deepEqual(body.search.attempt_log.map((a) => [a.provider, a.outcome, a.status]),
      [['tavily', 'status', 503], ['tavily', 'status', 503], ['brave', 'ok', undefined]]);
    assert.match(body.citations[0].url, /^https:\/\/example\.com\/tavily-down-.+\/1$/);
  });

  test('Tavily dropped, malformed or empty: Brave answers', async () => {
    for (const [fault, outcome] of [['drop', 'connect'], ['malformed', 'malformed'], ['empty', 'no_results']]) {
      const { res, body } = await search(unique(`fault sim:tavily:${fault}`));
      assert.equal(res.status, 200, fault);
      assert.equal(body.search.provider, 'brave', fault);
      assert.equal(body.search.attempt_log[0].outcome, outcome, fault);
    }
  });

  test('when both search providers fail the answer is a 502 listing the attempts', async () => {
    const { res, body } = await search(unique('nothing sim:tavily:status=500 sim:brave:status=429'));
    assert.equal(res.status, 502);
    assert.equal(body.error.code, 'search_failed');
    assert.deepEqual(body.error.attempts.map((a) => a.provider), ['tavily', 'tavily', 'brave', 'brave']);
    assert.ok(!JSON.stringify(body).includes('sim-key'));
  });
});
