// End to end: the knowledge function in the built Wasm on one runtime (E2E_RUNTIME=cloudflare|
// spin), reached through the gateway, with the simulator embedding (hashed bag of words) and
// answering. Every run uses fresh tenants so stored documents never collide.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startPlatform, stopAll, token } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
let base;
const tenant = `kn-${randomUUID()}`;
const headers = (t = tenant) => ({ authorization: `Bearer ${token({ tenant: t, role: 'admin' })}`, 'content-type': 'application/json' });

const DOCS = {
  warranty: 'The Acme X200 battery warranty lasts two years from the date of purchase. Batteries that swell are replaced free of charge.',
  bread: 'Sourdough bread needs a mature starter. Proof the dough overnight in a cool kitchen.',
  returns: '# Returns\n\n退货政策：商品在三十天内可以退货，需要保留发票。',
};

async function request(method, path, body, t = tenant) {
  const res = await fetch(`${base}${path}`, { method, headers: headers(t), body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { res, status: res.status, text, json: text ? JSON.parse(text) : null };
}

const ask = (content, extra = {}, t = tenant) =>
  request('POST', '/v1/knowledge', { messages: [{ role: 'user', content }], ...extra }, t);

function events(text) {
  return text.split('\n\n').filter((f) => f.trim()).map((frame) => ({
    name: frame.match(/^event: (.*)$/m)?.[1],
    data: JSON.parse(frame.match(/^data: (.*)$/m)?.[1]),
  }));
}

describe(`knowledge on ${runtime}`, () => {
  before(async () => {
    ({ base } = await startPlatform(runtime, { ATTEMPT_TIMEOUT_MS: '3000', MAX_RETRIES: '1', RETRY_BACKOFF_MS: '10' }));
    for (const [id, text] of Object.entries(DOCS)) {
      const format = id === 'returns' ? 'markdown' : 'text';
      const r = await request('POST', '/v1/knowledge/documents', { id, text, format, metadata: { source: 'e2e' } });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.id, id);
      assert.ok(r.json.chunks >= 1);
      assert.equal(r.json.model, 'openai/text-embedding-3-small');
    }
  });
  after(stopAll);

  test('documents are listed and read back', async () => {
    const list = await request('GET', '/v1/knowledge/documents');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.json.data.map((d) => d.id), ['bread', 'returns', 'warranty']);
    const one = await request('GET', '/v1/knowledge/documents/returns');
    assert.equal(one.status, 200);
    assert.deepEqual(one.json.metadata, { source: 'e2e' });
    assert.equal(one.json.format, 'markdown');
    assert.ok(Number.isInteger(one.json.created));
  });

  test('a question is answered from the right document, with citations', async () => {
    const r = await ask('How long does the battery warranty last?');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.found, true);
    assert.equal(r.json.mode, 'knowledge');
    assert.equal(r.json.citations[0].index, 1);
    assert.equal(r.json.citations[0].document_id, 'warranty');
    assert.equal(r.json.citations[0].chunk, 0);
    assert.ok(r.json.citations.every((c) => c.document_id === 'warranty'));
    assert.match(r.json.message.content, /battery warranty/);
    assert.ok(r.json.usage.total_tokens > 0);
    const cjk = await ask('退货政策是什么？', { top_k: 1 });
    assert.equal(cjk.json.citations[0].document_id, 'returns');
  });

  test('streamed: start, retrieve, deltas, usage, done with the citations', async () => {
    // `no-cache`: answered afresh (the same question asked whole above is cached, and a hit
    // replays a whole answer as one delta).
    const res = await fetch(`${base}/v1/knowledge`, {
      method: 'POST', headers: { ...headers(), 'cache-control': 'no-cache' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'How long does the battery warranty last?' }], stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const evs = events(await res.text());
    const names = evs.map((e) => e.name);
    assert.deepEqual(names.slice(0, 2), ['start', 'retrieve']);
    assert.deepEqual(names.slice(-2), ['usage', 'done']);
    assert.ok(names.slice(2, -2).length > 3 && names.slice(2, -2).every((n) => n === 'delta'));
    assert.equal(evs[1].data.chunks, evs.at(-1).data.citations.length);
    assert.equal(evs.at(-1).data.citations[0].document_id, 'warranty');
    assert.match(evs.filter((e) => e.name === 'delta').map((e) => e.data.text).join(''), /battery warranty/);
  });

  test('an unrelated question says nothing relevant was found', async () => {
    const r = await ask('Who painted the Mona Lisa?');
    assert.equal(r.status, 200);
    assert.equal(r.json.found, false);
    assert.deepEqual(r.json.citations, []);
    assert.match(r.json.message.content, /^I found nothing relevant/);
  });

  test('tenants are isolated', async () => {
    const other = `kn-other-${randomUUID()}`;
    const r = await ask('How long does the battery warranty last?', {}, other);
    assert.equal(r.json.found, false);
    assert.deepEqual((await request('GET', '/v1/knowledge/documents', undefined, other)).json.data, []);
    assert.equal((await request('GET', '/v1/knowledge/documents/warranty', undefined, other)).status, 404);
    assert.equal((await request('DELETE', '/v1/knowledge/documents/warranty', undefined, other)).status, 404);
    assert.equal((await request('GET', '/v1/knowledge/documents/warranty')).status, 200, 'still there for its owner');
  });

  test('delete removes a document from listing and answers', async () => {
    const id = 'temp';
    const made = await request('POST', '/v1/knowledge/documents', { id, text: 'The lighthouse keeper feeds seventeen cats.' });
    assert.equal(made.status, 201, made.text);
    assert.equal((await ask('How many cats does the lighthouse keeper feed?')).json.citations[0].document_id, id);
    const del = await request('DELETE', `/v1/knowledge/documents/${id}`);
    assert.equal(del.status, 204);
    assert.equal((await request('GET', `/v1/knowledge/documents/${id}`)).status, 404);
    assert.equal((await request('DELETE', `/v1/knowledge/documents/${id}`)).status, 404);
    assert.ok(!(await request('GET', '/v1/knowledge/documents')).json.data.some((d) => d.id === id));
    assert.equal((await ask('How many cats does the lighthouse keeper feed?')).json.found, false);
  });

  test('bad input and a failing embedding provider get clear errors', async () => {
    const bad = await request('POST', '/v1/knowledge/documents', { id: 'no/slash', text: 'x' });
    assert.equal(bad.status, 422);
    assert.equal(bad.json.error.code, 'validation_failed');
    assert.equal((await ask('q', { top_k: 99 })).status, 422);
    const anon = await fetch(`${base}/v1/knowledge/documents`);
    assert.equal(anon.status, 401);
    const failing = await request('POST', '/v1/knowledge/documents', { id: 'flaky', text: `Flaky ${randomUUID()} sim:openai:status=503` });
    // Overloaded each time: a 503 saying so, with a Retry-After.
    assert.equal(failing.status, 503, failing.text);
    assert.equal(failing.json.error.code, 'upstream_overloaded');
    assert.ok(Number(failing.res.headers.get('retry-after')) >= 1, failing.text);
    assert.equal(failing.json.error.attempts.length, 2);
    assert.equal((await request('GET', '/v1/knowledge/documents/flaky')).status, 404, 'nothing stored');
  });
});
