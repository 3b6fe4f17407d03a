// End to end: feature flags from config/cognitive_features.yaml changed without a restart
// (platform and tenant overrides through the admin API), the System 1 cache for chat and
// knowledge, event webhooks checked with the Standard Webhooks reference verifier, and guard
// hooks (deny, modify, a slow guard closed and open), on one runtime (E2E_RUNTIME).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { startPlatform, stopAll, token } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const run = randomUUID().slice(0, 8);
const owner = () => token({ role: 'owner', tenant: `ops-${run}`, sub: 'owner' });
const member = (tenant) => token({ role: 'member', tenant, sub: `m-${tenant}` });

/** The webhook receiver and the guard, on one local server. */
function receiver() {
  const deliveries = [];
  let failedOnce = false;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      if (req.url === '/hook') {
        deliveries.push({ headers: req.headers, body });
        // The first key.created delivery fails: the platform must try again.
        if (!failedOnce && body.includes('"key.created"')) {
          failedOnce = true;
          res.writeHead(500).end();
          return;
        }
        res.writeHead(204).end();
        return;
      }
      const text = JSON.stringify(JSON.parse(body).messages);
      if (text.includes('slow-guard')) return; // never answers
      const verdict = text.includes('forbidden-topic')
        ? { action: 'deny', reason: 'that topic is off limits' }
        : text.includes('[redact-me]')
          ? { action: 'modify', messages: JSON.parse(text.replaceAll('[redact-me]', '[redacted]')) }
          : { action: 'allow' };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(verdict));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ url: `http://127.0.0.1:${server.address().port}`, deliveries, close: () => server.close() });
  }));
}

async function call(base, method, path, credential, body, extra = {}) {
  const headers = { authorization: `Bearer ${credential}`, ...extra };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, headers: res.headers, body: json };
}

/** Repeats `attempt` until `done` holds of its result (KV on Workers is eventually consistent). */
async function until(attempt, done, ms = 70_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const result = await attempt();
    if (done(result) || Date.now() > deadline) return result;
    await new Promise((r) => setTimeout(r, 300));
  }
}

const chatBody = (content) => ({ messages: [{ role: 'user', content }] });

describe(`feature flags, webhooks and guards on ${runtime}`, () => {
  let base;
  let sim;
  let hooks;
  before(async () => {
    hooks = await receiver();
    ({ base, sim } = await startPlatform(runtime, {
      WEBHOOK_URL: `${hooks.url}/hook`,
      WEBHOOK_SECRET: SECRET,
      GUARD_URL: `${hooks.url}/guard`,
      GUARD_TIMEOUT_MS: '1000',
    }, { sandbox: false }));
  });
  after(() => { stopAll(); hooks.close(); });

  test("the file's defaults are in effect; overrides apply per tenant without a restart", async () => {
    const defaults = await call(base, 'GET', '/admin/flags', owner());
    assert.equal(defaults.status, 200, JSON.stringify(defaults.body));
    assert.equal(defaults.body.flags.cognitive_features.enabled, true);
    assert.equal(defaults.body.flags.cognitive_features.system1.cache_max_size, 100000);
    assert.equal(defaults.body.flags.platform.router, 'learned');
    assert.equal(defaults.body.sources['platform.modes.thinking'], 'file');

    const [off, on] = [`off-${run}`, `on-${run}`];
    const set = await call(base, 'PUT', `/admin/tenants/${off}/flags`, owner(), { platform: { modes: { thinking: false } } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal(set.body.sources['platform.modes.thinking'], 'tenant');
    const refused = await until(() => call(base, 'POST', '/v1/thinking', member(off), chatBody('why is the sky blue?')), (r) => r.status === 403);
    assert.equal(refused.body.error.code, 'feature_disabled', JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /platform\.modes\.thinking/);
    const served = await call(base, 'POST', '/v1/thinking', member(on), chatBody('why is the sky blue?'));
    assert.equal(served.status, 200, JSON.stringify(served.body));

    const platform = await call(base, 'PUT', '/admin/flags', owner(), { cognitive_features: { system1: { cache_ttl: 120 } } });
    assert.equal(platform.body.sources['cognitive_features.system1.cache_ttl'], 'platform');
    const back = await call(base, 'PUT', '/admin/flags', owner(), { cognitive_features: { system1: { cache_ttl: null } } });
    assert.notEqual(back.body.sources['cognitive_features.system1.cache_ttl'], 'platform');
    const bad = await call(base, 'PUT', '/admin/flags', owner(), { cognitive_features: { system1: { cache_tll: 1 } } });
    assert.equal(bad.status, 422);
    assert.match(bad.body.error.message, /cognitive_features\.system1\.cache_tll/);
    const audit = await call(base, 'GET', '/admin/audit', owner());
    assert.ok(audit.body.data.some((e) => e.action === 'flags.update' && e.target === off), JSON.stringify(audit.body));
  });

  test('the cache switches off and on for a tenant; knowledge answers are cached until a document is added', async () => {
    const tenant = `cache-${run}`;
    const content = `cache me ${randomUUID()}`;
    const ask = () => call(base, 'POST', '/v1/chat', member(tenant), chatBody(content));
    assert.equal((await ask()).headers.get('x-cache'), 'miss');
    assert.equal((await until(ask, (r) => r.headers.get('x-cache') === 'hit', 20_000)).headers.get('x-cache'), 'hit');
    const flags = (enable) => call(base, 'PUT', `/admin/tenants/${tenant}/flags`, owner(), { cognitive_features: { system1: { enable_cache: enable } } });
    await flags(false);
    const asked = async () => (await (await fetch(`${sim}/_sim/requests`)).json()).filter((r) => JSON.stringify(r.body).includes(content)).length;
    await until(ask, (r) => r.headers.get('x-cache') === 'miss');
    const before = await asked();
    assert.equal((await ask()).headers.get('x-cache'), 'miss');
    assert.equal(await asked(), before + 1, 'off: the provider answers every time');
    await flags(true);
    assert.equal((await until(ask, (r) => r.headers.get('x-cache') === 'hit')).headers.get('x-cache'), 'hit');

    const admin = token({ role: 'admin', tenant, sub: 'kb' });
    const ingest = (id, text) => call(base, 'POST', '/v1/knowledge/documents', admin, { id, text });
    assert.equal((await ingest('warranty', 'The Acme X200 battery warranty lasts two years from the date of purchase.')).status, 201);
    const question = () => call(base, 'POST', '/v1/knowledge', admin, chatBody('How long does the X200 battery warranty last?'));
    assert.equal((await question()).headers.get('x-cache'), 'miss');
    const hit = await until(question, (r) => r.headers.get('x-cache') === 'hit', 20_000);
    assert.equal(hit.headers.get('x-cache'), 'hit');
    assert.equal(hit.body.citations[0].document_id, 'warranty');
    assert.equal((await ingest('bread', 'Sourdough bread needs a mature starter.')).status, 201);
    assert.equal((await question()).headers.get('x-cache'), 'miss', 'a new document: answered afresh');
  });

  test('events reach the receiver signed as Standard Webhooks, and a failed delivery is retried', async () => {
    const created = await call(base, 'POST', '/admin/keys', owner(), { name: `hooked-${run}` });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const verifier = new Webhook(SECRET);
    const ofKey = () => hooks.deliveries.filter((d) => d.body.includes(created.body.id) && d.body.includes('"key.created"'));
    await until(async () => ofKey(), (list) => list.length >= 2, 20_000);
    const [first, second] = ofKey();
    assert.ok(second, 'retried after the 500');
    assert.equal(first.headers['webhook-id'], second.headers['webhook-id']);
    for (const delivery of [first, second]) {
      const event = verifier.verify(delivery.body, delivery.headers);
      assert.equal(event.type, 'key.created');
      assert.equal(event.data.key_id, created.body.id);
      assert.ok(!delivery.body.includes(created.body.key), 'never the key itself');
    }
    const content = `hooked ${randomUUID()}`;
    const chat = await call(base, 'POST', '/v1/chat', member(`hooks-${run}`), chatBody(content));
    assert.equal(chat.status, 200);
    const completed = await until(
      async () => hooks.deliveries.find((d) => d.body.includes('"request.completed"') && d.body.includes(`hooks-${run}`)),
      Boolean, 20_000);
    assert.ok(completed, 'request.completed arrived');
    const event = verifier.verify(completed.body, completed.headers);
    assert.equal(event.data.mode, 'chat');
    assert.ok(event.data.input_tokens > 0);
    assert.ok(!completed.body.includes(content), 'no prompt');
  });

  test('the guard denies before any provider call, modifies messages, and a silent guard fails closed', async () => {
    const tenant = `guard-${run}`;
    const marker = `forbidden-topic ${randomUUID()}`;
    const denied = await call(base, 'POST', '/v1/chat', member(tenant), chatBody(marker));
    assert.equal(denied.status, 403, JSON.stringify(denied.body));
    assert.equal(denied.body.error.code, 'blocked_by_guard');
    assert.match(denied.body.error.message, /that topic is off limits/);
    const openai = await call(base, 'POST', '/v1/chat/completions', member(tenant), { model: 'gpt-4.1-mini', ...chatBody(marker) });
    assert.equal(openai.status, 403);
    assert.equal(openai.body.error.code, 'blocked_by_guard', 'in OpenAI\'s shape');
    const log = await (await fetch(`${sim}/_sim/requests`)).json();
    assert.ok(!log.some((r) => JSON.stringify(r.body).includes(marker)), 'the provider saw no request');

    const secret = `my code is [redact-me] ${randomUUID()}`;
    const modified = await call(base, 'POST', '/v1/chat', member(tenant), chatBody(secret));
    assert.equal(modified.status, 200, JSON.stringify(modified.body));
    const seen = await (await fetch(`${sim}/_sim/requests`)).json();
    const sent = seen.filter((r) => JSON.stringify(r.body).includes(secret.replace('[redact-me]', '[redacted]')));
    assert.ok(sent.length > 0, 'the model saw the modified messages');
    assert.ok(!seen.some((r) => JSON.stringify(r.body).includes(secret)), 'and never the original');

    const slow = await call(base, 'POST', '/v1/chat', member(tenant), chatBody(`slow-guard ${randomUUID()}`));
    assert.equal(slow.status, 503, JSON.stringify(slow.body));
    assert.equal(slow.body.error.code, 'guard_unavailable');
  });
});

describe(`a guard failing open on ${runtime}`, () => {
  let base;
  let hooks;
  before(async () => {
    hooks = await receiver();
    ({ base } = await startPlatform(runtime, { GUARD_URL: `${hooks.url}/guard`, GUARD_TIMEOUT_MS: '500', GUARD_FAIL: 'open' }, { sandbox: false }));
  });
  after(() => { stopAll(); hooks.close(); });

  test('a silent guard lets the request through', async () => {
    const res = await call(base, 'POST', '/v1/chat', member(`open-${run}`), chatBody(`slow-guard ${randomUUID()}`));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.message.content.length > 0);
  });
});
