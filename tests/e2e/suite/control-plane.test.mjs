// End to end: the control plane on one runtime (E2E_RUNTIME=cloudflare|spin) over its real
// databases (D1 and Durable Objects under workerd; Spin's SQLite in spin-host): API keys used
// through the official OpenAI SDK, roles, exact rate limits under concurrency, a budget, usage
// reports read by a CSV parser, the audit log, SSO tokens (RS256 and ES256 from a JWKS this
// test serves) and the token exchange.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import { startPlatform, stopAll, token } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
const ISSUER = 'https://idp.example';
const AUDIENCE = 'opencode';
let base;
let jwks;

// Every platform token here carries the issuer and audience the platform checks.
const jwt = (role, tenant, sub = `${role}-${tenant}`) => token({ role, tenant, sub, claims: { iss: ISSUER, aud: AUDIENCE } });
const owner = () => jwt('owner', 'ops');
const hello = (text = 'hello') => ({ messages: [{ role: 'user', content: `${text} ${randomUUID()}` }] });

async function call(method, path, credential, body) {
  const headers = { authorization: `Bearer ${credential}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, headers: res.headers, body: json };
}

async function newKey(creator, body) {
  const created = await call('POST', '/admin/keys', creator, body);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body;
}

/** Polls `check` until it returns true or `ms` pass (background work lands after responses). */
async function eventually(check, ms = 10_000) {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** An identity provider's keys: RSA and P-256, served as a JWKS. */
function identityProvider() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keys = [
    { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1', alg: 'ES256', use: 'sig' },
  ];
  let fetched = 0;
  const server = createServer((req, res) => {
    fetched += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys }));
  });
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const mint = ({ alg = 'RS256', kid = alg === 'RS256' ? 'rsa-1' : 'ec-1', key, claims = {} }) => {
    const now = Math.floor(Date.now() / 1000);
    const head = b64({ alg, typ: 'JWT', kid });
    const body = b64({ sub: 'sso-user', tenant: 'acme', role: 'member', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 600, ...claims });
    const signer = key || (alg === 'RS256' ? rsa.privateKey : ec.privateKey);
    const signature = alg === 'RS256'
      ? sign('sha256', Buffer.from(`${head}.${body}`), signer)
      : sign('sha256', Buffer.from(`${head}.${body}`), { key: signer, dsaEncoding: 'ieee-p1363' });
    return `${head}.${body}.${signature.toString('base64url')}`;
  };
  return { server, mint, other, fetched: () => fetched };
}

describe(`the control plane on ${runtime}`, () => {
  before(async () => {
    jwks = identityProvider();
    await new Promise((r) => jwks.server.listen(0, '127.0.0.1', r));
    const { port } = jwks.server.address();
    ({ base } = await startPlatform(runtime, {
      ATTEMPT_TIMEOUT_MS: '3000', MAX_RETRIES: '0', RETRY_BACKOFF_MS: '10',
      JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
    }, { sandbox: false }));
  });
  after(() => { jwks.server.close(); stopAll(); });

  test('a key is created, used through the OpenAI SDK, listed, patched and revoked', async () => {
    const admin = jwt('admin', 'keys-co');
    const created = await newKey(admin, { name: 'sdk', modes: ['chat'] });
    assert.match(created.key, /^ock_[0-9A-Za-z]{32,}$/);
    assert.equal(created.role, 'member');
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: created.key, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'opencode/chat', messages: hello().messages });
    assert.equal(completion.object, 'chat.completion');
    // The allow-list: chat only.
    await assert.rejects(client.chat.completions.create({ model: 'opencode/search', messages: hello().messages }), { status: 403 });

    const listed = await call('GET', '/admin/keys', admin);
    assert.deepEqual(listed.body.data.map((k) => k.id), [created.id]);
    assert.equal(listed.body.data[0].key, undefined, 'shown once');
    const patched = await call('PATCH', `/admin/keys/${created.id}`, admin, { name: 'sdk-2', limits: { rpm: 100 } });
    assert.equal(patched.status, 200);
    assert.deepEqual([patched.body.name, patched.body.limits], ['sdk-2', { rpm: 100 }]);
    assert.equal((await call('GET', `/admin/keys/${created.id}`, admin)).body.name, 'sdk-2');

    assert.equal((await call('DELETE', `/admin/keys/${created.id}`, admin)).status, 204);
    // Revocation reaches every instance within 10 seconds.
    const refused = await eventually(async () => (await call('POST', '/v1/chat', created.key, hello())).status === 401);
    assert.ok(refused, 'the revoked key is refused within 10 s');
    const audit = await call('GET', '/admin/audit', admin);
    const actions = audit.body.data.map((e) => e.action);
    for (const action of ['key.create', 'key.update', 'key.revoke']) assert.ok(actions.includes(action), JSON.stringify(audit.body));
    const revoke = audit.body.data.find((e) => e.action === 'key.revoke');
    assert.deepEqual([revoke.target, revoke.actor, revoke.tenant], [created.id, 'admin-keys-co', 'keys-co']);
    assert.match(revoke.request_id, /\S/);
  });

  test('30 concurrent requests against rpm 10 admit exactly 10', async () => {
    const { key } = await newKey(jwt('admin', 'burst-co'), { name: 'burst', limits: { rpm: 10 } });
    const results = await Promise.all(Array.from({ length: 30 }, () => call('POST', '/v1/chat', key, hello('burst'))));
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    assert.equal(ok.length, 10, results.map((r) => r.status).join(','));
    assert.equal(limited.length, 20);
    for (const r of limited) {
      assert.equal(r.body.error.code, 'rate_limited');
      assert.equal(r.body.error.message, 'rate limit reached for this API key: requests per minute');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
    assert.equal(ok[0].headers.get('x-ratelimit-limit-requests'), '10');
  });

  test('concurrent requests beyond a concurrency limit are refused with their own code', async () => {
    const { key } = await newKey(jwt('admin', 'conc-co'), { name: 'one-at-a-time', limits: { concurrency: 1 } });
    // The simulator delays this answer, so the others arrive while it runs.
    const slow = { messages: [{ role: 'user', content: `sim:openai:delay_ms=1500 ${randomUUID()}` }] };
    const results = await Promise.all(Array.from({ length: 5 }, () => call('POST', '/v1/chat', key, slow)));
    const codes = results.map((r) => r.status === 200 ? 'ok' : r.body.error.code).sort();
    assert.equal(codes.filter((c) => c === 'ok').length, 1, codes.join(','));
    assert.ok(codes.filter((c) => c === 'too_many_concurrent_requests').length >= 1, codes.join(','));
  });

  test('a budget reached refuses further requests, finally, naming no figures', async () => {
    const tenant = 'budget-co';
    const set = await call('PUT', `/admin/tenants/${tenant}/limits`, owner(), { budget: { usd: 0.000001, period: 'day' } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const member = jwt('member', tenant);
    assert.equal((await call('POST', '/v1/chat', member, hello())).status, 200);
    let refused;
    assert.ok(await eventually(async () => {
      refused = await call('POST', '/v1/chat/completions', member, { model: 'opencode/chat', ...hello() });
      return refused.status === 429;
    }), 'the spend is settled after the answer');
    assert.equal(refused.body.error.type, 'insufficient_quota');
    assert.equal(refused.body.error.code, 'budget_exceeded');
    assert.equal(refused.headers.get('x-should-retry'), 'false');
    assert.doesNotMatch(refused.body.error.message, /\$|\d\.\d/);
    const audit = await call('GET', `/admin/audit?tenant=${tenant}`, owner());
    assert.ok(await eventually(async () => (await call('GET', `/admin/audit?tenant=${tenant}`, owner())).body.data.some((e) => e.action === 'budget.exceeded')), JSON.stringify(audit.body));
  });

  test('a viewer and a member are refused where they should be; a tenant admin is blind to others', async () => {
    const viewer = jwt('viewer', 'roles-co');
    const member = jwt('member', 'roles-co');
    assert.equal((await call('POST', '/v1/chat', viewer, hello())).status, 403);
    assert.equal((await call('GET', '/admin/usage', viewer)).status, 200);
    assert.equal((await call('GET', '/admin/keys', member)).status, 403);
    assert.equal((await call('POST', '/v1/knowledge/documents', member, { id: 'd', text: 'x' })).status, 403);
    assert.equal((await call('DELETE', '/v1/knowledge/documents/d', member)).status, 403);
    const theirs = await newKey(jwt('admin', 'other-co'), { name: 'theirs' });
    const mine = jwt('admin', 'roles-co');
    assert.equal((await call('GET', `/admin/keys/${theirs.id}`, mine)).status, 404);
    assert.equal((await call('DELETE', `/admin/keys/${theirs.id}`, mine)).status, 404);
    assert.equal((await call('GET', '/admin/usage?tenant=other-co', mine)).status, 403);
    assert.equal((await call('POST', '/admin/keys', mine, { name: 'x', role: 'owner' })).status, 403);
    const metrics = await call('GET', '/admin/metrics', mine);
    assert.equal(metrics.body.tenant, 'roles-co');
  });

  test('usage reports in JSON and in CSV that a CSV parser reads', async () => {
    const admin = jwt('admin', 'usage-co');
    const { key, id } = await newKey(admin, { name: 'reporter' });
    for (let i = 0; i < 3; i += 1) assert.equal((await call('POST', '/v1/chat', key, hello('usage'))).status, 200);
    let report;
    assert.ok(await eventually(async () => {
      report = await call('GET', '/admin/usage?group_by=key,model,mode', admin);
      return report.body.data?.[0]?.requests === 3;
    }), JSON.stringify(report?.body));
    const [row] = report.body.data;
    assert.equal(row.key_id, id);
    assert.equal(row.mode, 'chat');
    assert.ok(row.input_tokens > 0 && row.output_tokens > 0 && row.cost_usd > 0, JSON.stringify(row));
    const csv = await fetch(`${base}/admin/usage?group_by=day,key&format=csv`, { headers: { authorization: `Bearer ${admin}` } });
    assert.match(csv.headers.get('content-type'), /^text\/csv/);
    const text = await csv.text();
    const parsed = spawnSync('python3', ['-c', 'import csv, json, sys; print(json.dumps(list(csv.DictReader(sys.stdin))))'], { input: text, encoding: 'utf8' });
    assert.equal(parsed.status, 0, parsed.stderr);
    const rows = JSON.parse(parsed.stdout);
    assert.equal(rows.length, 1, text);
    assert.equal(rows[0].key_id, id);
    assert.equal(rows[0].requests, '3');
    assert.match(rows[0].day, /^\d{4}-\d{2}-\d{2}$/);
    const ledger = await call('GET', '/admin/usage/requests?limit=2', admin);
    assert.equal(ledger.body.data.length, 2);
    assert.equal(ledger.body.has_more, true);
  });

  test('RS256 and ES256 tokens from the identity provider are accepted; a wrong issuer, audience or kid is not', async () => {
    for (const alg of ['RS256', 'ES256']) {
      const res = await call('POST', '/v1/chat', jwks.mint({ alg }), hello(alg));
      assert.equal(res.status, 200, `${alg}: ${JSON.stringify(res.body)}`);
    }
    // Straight to a function on Spin's direct route, too.
    const direct = new OpenAI({ baseURL: `${base}/v1`, apiKey: jwks.mint({ alg: 'ES256' }), maxRetries: 0 });
    assert.equal((await direct.chat.completions.create({ model: 'opencode/chat', messages: hello().messages })).object, 'chat.completion');
    const fetchedBefore = jwks.fetched();
    for (const [why, token] of [
      ['issuer', jwks.mint({ claims: { iss: 'https://evil.example' } })],
      ['audience', jwks.mint({ claims: { aud: 'someone-else' } })],
      ['kid', jwks.mint({ kid: 'unknown-kid' })],
      ['key', jwks.mint({ key: jwks.other.privateKey })],
    ]) {
      const res = await call('POST', '/v1/chat', token, hello());
      assert.equal(res.status, 401, `${why}: ${JSON.stringify(res.body)}`);
    }
    // An unknown kid refetches the JWKS at most once a minute per instance.
    assert.ok(jwks.fetched() - fetchedBefore <= 4, `fetched ${jwks.fetched() - fetchedBefore} times`);
    // The SSO caller's role applies: a viewer makes no model calls.
    assert.equal((await call('POST', '/v1/chat', jwks.mint({ claims: { role: 'viewer' } }), hello())).status, 403);
  });

  test('an API key is exchanged for a short-lived token; a username and password are not', async () => {
    const { key, id } = await newKey(jwt('admin', 'exchange-co'), { name: 'exchange' });
    const form = await fetch(`${base}/api/v1/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=alice&password=secret',
    });
    assert.equal(form.status, 401);
    const exchanged = await fetch(`${base}/api/v1/auth/token`, { method: 'POST', headers: { 'x-api-key': key } });
    assert.equal(exchanged.status, 200);
    const body = await exchanged.json();
    assert.equal(body.token_type, 'bearer');
    assert.ok(body.expires_in > 0 && body.expires_in <= 3600);
    assert.equal((await call('POST', '/v1/chat', body.access_token, hello())).status, 200);
    const ledger = await call('GET', '/admin/usage/requests', jwt('admin', 'exchange-co'));
    assert.ok(await eventually(async () => (await call('GET', '/admin/usage/requests', jwt('admin', 'exchange-co'))).body.data.some((r) => r.key_id === id)), JSON.stringify(ledger.body));
  });
});
