// End to end: routers chosen by configuration and A/B variants on one runtime
// (E2E_RUNTIME=cloudflare|spin): the variables reach the functions through the runtime's own
// configuration (wrangler vars, spin.toml variables).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startPlatform, stopAll, token } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
const TENANT = `ab-${randomUUID().slice(0, 8)}`;
const EXPERIMENTS = {
  name: 'router-ab',
  variants: [
    { name: 'control', weight: 1 },
    { name: 'lexicon', weight: 1, router: 'lexicon' },
  ],
};
let base;

const auth = (sub, role = 'member', tenant = TENANT) =>
  ({ authorization: `Bearer ${token({ sub, role, tenant })}`, 'content-type': 'application/json' });
const body = (content, extra = {}) => JSON.stringify({ messages: [{ role: 'user', content }], ...extra });

async function route(sub, content, tenant = TENANT) {
  const res = await fetch(`${base}/v1/route`, { method: 'POST', headers: auth(sub, 'member', tenant), body: body(content) });
  assert.equal(res.status, 200);
  return { variant: res.headers.get('x-variant'), json: await res.json() };
}

describe(`routers and A/B variants on ${runtime}`, () => {
  before(async () => {
    ({ base } = await startPlatform(runtime, {
      ROUTER_RULES: JSON.stringify([{ match: 'invoice', mode: 'knowledge', tier: 'system1' }]),
      ROUTER_TENANTS: JSON.stringify({ 'length-tenant': { router: 'length' } }),
      EXPERIMENTS: JSON.stringify(EXPERIMENTS),
    }, { sandbox: false }));
  });
  after(stopAll);

  test('the configured routers decide and say so; rules first; a tenant override', async () => {
    const code = await route('u-1', 'Write a Python function that parses ISO dates, with unit tests');
    assert.equal(code.json.routing.mode, 'code');
    assert.ok(['learned', 'lexicon'].includes(code.json.routing.router), JSON.stringify(code.json));
    assert.equal(code.json.variant, code.variant);
    const rule = await route('u-1', 'Where is the invoice from March?');
    assert.deepEqual([rule.json.routing.mode, rule.json.routing.router], ['knowledge', 'rules']);
    assert.equal(rule.json.routing.reasons[0], 'rule 1 matched `invoice`');
    // Outside the experiment's variants' routers, the tenant's own.
    const control = await (async () => {
      for (let i = 0; ; i += 1) {
        const r = await route(`t-${i}`, 'hello there', 'length-tenant');
        if (r.variant === 'control') return r;
      }
    })();
    assert.equal(control.json.routing.router, 'length');
  });

  test('a caller stays in its variant on every function, and metrics are summed per variant', async () => {
    const assigned = new Map();
    for (let i = 0; i < 40; i += 1) {
      const sub = `sticky-${i}`;
      const first = await route(sub, 'Compare three sorting algorithms');
      const again = await route(sub, '你好');
      assert.equal(again.variant, first.variant, 'sticky per subject');
      assert.equal(first.json.routing.router, first.variant === 'lexicon' ? 'lexicon' : 'learned');
      assigned.set(sub, first.variant);
    }
    const counts = [...assigned.values()].reduce((m, v) => m.set(v, (m.get(v) || 0) + 1), new Map());
    assert.ok(counts.get('control') >= 8 && counts.get('lexicon') >= 8, JSON.stringify([...counts]));

    // The chat function puts the caller in the same variant, reached through the gateway.
    const [sub, variant] = [...assigned.entries()][0];
    const res = await fetch(`${base}/v1/chat`, { method: 'POST', headers: auth(sub), body: body(`hi ${randomUUID()}`) });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(res.headers.get('x-variant'), variant);
    await res.json();

    const admin = { authorization: `Bearer ${token({ role: 'owner', tenant: TENANT })}` };
    let metrics;
    for (let tries = 0; tries < 60; tries += 1) {
      metrics = await (await fetch(`${base}/admin/metrics`, { headers: admin })).json();
      if ((metrics.variants?.[variant]?.requests ?? 0) >= 1) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(metrics.variants[variant].requests >= 1, JSON.stringify(metrics.variants));
  });
});
