// End to end: the built Wasm functions on one runtime (E2E_RUNTIME=cloudflare|spin) against
// the provider simulator. Faults are picked per test by directives in the prompt; every
// test uses its own text so the simulator's counters never collide.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { events, startPlatform, stopAll, token } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
let base, sim;
const auth = () => ({ authorization: `Bearer ${token()}`, 'content-type': 'application/json' });
const unique = (text) => `${text} ${randomUUID()}`;

async function chat(content, extra = {}, headers = auth()) {
  const res = await fetch(`${base}/v1/chat`, {
    method: 'POST', headers, body: JSON.stringify({ messages: [{ role: 'user', content }], ...extra }),
  });
  return { res, body: await res.json() };
}


async function stream(content, extra = {}) {
  const res = await fetch(`${base}/v1/chat`, {
    method: 'POST', headers: auth(), body: JSON.stringify({ messages: [{ role: 'user', content }], stream: true, ...extra }),
  });
  assert.equal(res.status, 200, await (res.status === 200 ? '' : res.text()));
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  return events(res);
}

const text = (evs) => evs.filter((e) => e.name === 'delta').map((e) => e.data.text).join('');

describe(`chat on ${runtime}`, () => {
  before(async () => {
    ({ base, sim } = await startPlatform(runtime, {
      ATTEMPT_TIMEOUT_MS: '1500', MAX_RETRIES: '1', RETRY_BACKOFF_MS: '10', RETRY_AFTER_CAP_MS: '1500',
      MAX_BODY_BYTES: '65536',
    }));
  });
  after(stopAll);

  test('health is public and shows providers without keys or base URLs', async () => {
    const res = await fetch(`${base}/health`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, 'ok');
    assert.deepEqual(body.providers.map((p) => p.name), ['openai', 'anthropic', 'gemini']);
    assert.ok(!JSON.stringify(body).includes('sim-key'));
    assert.ok(!JSON.stringify(body).includes('127.0.0.1'), JSON.stringify(body));
    assert.equal(body.auth_configured, true);
  });

  test('missing, tampered and expired tokens get 401 JSON', async () => {
    for (const headers of [
      { 'content-type': 'application/json' },
      { authorization: `Bearer ${token()}x` },
      { authorization: `Bearer ${token({ secret: 'another-secret-0123456789-01234567' })}` },
      { authorization: `Bearer ${token({ exp: Math.floor(Date.now() / 1000) - 3600 })}` },
    ]) {
      const { res, body } = await chat('hi', {}, headers);
      assert.equal(res.status, 401);
      assert.match(body.error.code, /missing_token|invalid_token/);
      assert.equal(body.error.request_id, res.headers.get('x-request-id'));
    }
  });

  test('bad input gets 400/404/413/422 JSON naming the problem', async () => {
    const post = (body) => fetch(`${base}/v1/chat`, { method: 'POST', headers: auth(), body });
    const cases = [
      ['{"messages":', 400, 'malformed_json'],
      ['{"messages":[]}', 422, 'validation_failed'],
      ['{"messages":[{"role":"wizard","content":"x"}]}', 422, 'validation_failed'],
      ['{"messages":[{"role":"user","content":42}]}', 422, 'validation_failed'],
      [JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(70000) }] }), 413, 'payload_too_large'],
    ];
    for (const [body, status, code] of cases) {
      const res = await post(body);
      const json = await res.json();
      assert.equal(res.status, status, body.slice(0, 60));
      assert.equal(json.error.code, code);
      assert.ok(json.error.message.length > 0);
    }
    const res = await fetch(`${base}/v1/nowhere`, { headers: auth() });
    assert.equal(res.status, 404);
    assert.equal((await res.json()).error.code, 'not_found');
  });

  test('whole bodies are sent with their length, not chunked', async () => {
    const marker = unique('framing');
    const res = await fetch(`${base}/v1/chat`, {
      method: 'POST', headers: { ...auth(), 'cache-control': 'no-store' },
      body: JSON.stringify({ messages: [{ role: 'user', content: marker }] }),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200, bytes.toString());
    // Spin serves chat itself; on Workers the gateway streams the chat function's answer on.
    if (runtime === 'spin') assert.equal(res.headers.get('content-length'), String(bytes.length));
    const log = await (await fetch(`${sim}/_sim/requests`)).json();
    const call = log.find((r) => JSON.stringify(r.body).includes(marker));
    assert.ok(call, 'the provider was called');
    assert.equal(call.headers['transfer-encoding'], undefined);
    assert.match(call.headers['content-length'] ?? '', /^[1-9][0-9]*$/, 'the provider got a declared length');
  });

  test('request ids are echoed when sent and generated otherwise', async () => {
    const res = await fetch(`${base}/health`, { headers: { 'x-request-id': 'trace-42' } });
    assert.equal(res.headers.get('x-request-id'), 'trace-42');
    const other = await fetch(`${base}/health`);
    assert.match(other.headers.get('x-request-id'), /^req_[0-9a-f]{24}$/);
  });

  test('System 1 cache: a repeat is a hit, replayed as a stream too; no-store bypasses', async () => {
    const content = unique('cache me');
    const first = await chat(content);
    assert.equal(first.res.headers.get('x-cache'), 'miss');
    // The entry is written after the response (waitUntil / a post-return task): poll briefly.
    let again;
    for (let i = 0; i < 40; i++) {
      again = await chat(content);
      if (again.res.headers.get('x-cache') === 'hit') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(again.res.headers.get('x-cache'), 'hit');
    assert.equal(again.body.message.content, first.body.message.content);
    assert.equal(again.body.attempts, 0);
    const replayed = await stream(content);
    assert.equal(text(replayed), first.body.message.content);
    assert.deepEqual(replayed.map((e) => e.name).filter((n) => n !== 'delta'), ['start', 'usage', 'done']);
    const bypass = await chat(content, {}, { ...auth(), 'cache-control': 'no-store' });
    assert.equal(bypass.res.headers.get('x-cache'), 'miss');
    const other = await chat(content, {}, { ...auth(), authorization: `Bearer ${token({ tenant: 'other' })}` });
    assert.equal(other.res.headers.get('x-cache'), 'miss', 'tenants never share entries');
  });

  test('POST /v1/route returns the analyzer decision, in English and Chinese', async () => {
    const route = async (body) => {
      const res = await fetch(`${base}/v1/route`, { method: 'POST', headers: auth(), body: JSON.stringify(body) });
      return { status: res.status, body: await res.json() };
    };
    const code = await route({ messages: [{ role: 'user', content: 'Debug this Rust function that fails to compile' }] });
    assert.equal(code.status, 200);
    assert.equal(code.body.routing.mode, 'code');
    assert.match(code.body.routing.tier, /^system[12]$/);
    assert.ok(code.body.routing.reasons.length > 0);
    const zh = await route({ messages: [{ role: 'user', content: '请帮我搜索今天的最新新闻' }], mode: 'auto' });
    assert.equal(zh.body.routing.mode, 'search');
    const bad = await route({ messages: [{ role: 'user', content: 'x' }], mode: 'magic' });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error.code, 'validation_failed');
  });

  test('a plain chat is answered by the first provider with usage', async () => {
    const { res, body } = await chat(unique('hello'));
    assert.equal(res.status, 200);
    assert.equal(body.provider, 'openai');
    assert.equal(body.attempts, 1);
    assert.match(body.message.content, /^Hello from openai/);
    assert.ok(body.usage.input_tokens > 0 && body.usage.output_tokens > 0);
    assert.equal(body.usage.total_tokens, body.usage.input_tokens + body.usage.output_tokens);
    assert.equal(res.headers.get('x-provider'), 'openai');
  });

  test('each provider answers when its model is asked for, streamed or not', async () => {
    for (const [model, provider] of [['claude-haiku-4-5', 'anthropic'], ['gemini-2.5-flash', 'gemini'], ['gpt-4.1', 'openai']]) {
      const { body } = await chat(unique('which'), { model });
      assert.equal(body.provider, provider);
      assert.equal(body.model, model);
      assert.ok(body.usage.output_tokens > 0);
      const prompt = unique('stream which');
      const evs = await stream(prompt, { model });
      assert.equal(evs[0].name, 'start');
      assert.equal(evs[0].data.provider, provider);
      assert.match(text(evs), new RegExp(`^Hello from ${provider}`));
      const usage = evs.find((e) => e.name === 'usage').data;
      assert.ok(usage.input_tokens > 0 && usage.output_tokens > 0, JSON.stringify(usage));
      assert.equal(evs.at(-1).name, 'done');
    }
  });

  test('a 503 is retried, then the next provider answers', async () => {
    const { res, body } = await chat(unique('sim:openai:status=503'));
    assert.equal(res.status, 200);
    assert.equal(body.provider, 'anthropic');
    assert.equal(body.attempts, 3);
    assert.deepEqual(body.attempt_log.map((a) => a.outcome), ['status', 'status', 'ok']);
  });

  test('a 400 is not retried on the same provider', async () => {
    const { body } = await chat(unique('sim:openai:status=400'));
    assert.equal(body.provider, 'anthropic');
    assert.deepEqual(body.attempt_log.map((a) => a.provider), ['openai', 'anthropic']);
  });

  test('one transient failure is retried on the same provider', async () => {
    const { body } = await chat(unique('sim:openai:status=503*1'));
    assert.equal(body.provider, 'openai');
    assert.equal(body.attempts, 2);
  });

  test('Retry-After is honoured', async () => {
    const t0 = performance.now();
    const { body } = await chat(unique('sim:openai:status=429*1 sim:openai:retry_after=1*1'));
    assert.equal(body.provider, 'openai');
    assert.ok(performance.now() - t0 >= 950, `answered after ${performance.now() - t0} ms`);
  });

  test('hangs, dropped connections and malformed bodies fall back', async () => {
    for (const fault of ['hang', 'drop', 'malformed']) {
      const { res, body } = await chat(unique(`sim:openai:${fault}`));
      assert.equal(res.status, 200, fault);
      assert.equal(body.provider, 'anthropic', fault);
      const outcome = { hang: 'timeout', drop: 'connect', malformed: 'malformed' }[fault];
      assert.equal(body.attempt_log[0].outcome, outcome, fault);
    }
  });

  test('when every provider fails the answer is a 502 naming each attempt', async () => {
    const { res, body } = await chat(unique('sim:any:status=500'));
    assert.equal(res.status, 502);
    assert.equal(body.error.code, 'upstream_failed');
    assert.equal(body.error.attempts.length, 6);
    assert.ok(!JSON.stringify(body).includes('sim-key'));
    // Every one overloaded: a 503 with a Retry-After, which clients wait out.
    const overloaded = await chat(unique('sim:any:status=503'));
    assert.equal(overloaded.res.status, 503);
    assert.equal(overloaded.body.error.code, 'upstream_overloaded');
    assert.equal(overloaded.res.headers.get('retry-after'), '1');
  });

  test('a stream arrives chunk by chunk and matches the non-streamed answer', async () => {
    const prompt = unique('stream me sim:openai:chunk_delay_ms=100');
    const evs = await stream(prompt);
    const deltas = evs.filter((e) => e.name === 'delta');
    assert.ok(deltas.length >= 5);
    const spread = deltas.at(-1).at - deltas[0].at;
    assert.ok(spread >= 100 * (deltas.length - 2), `deltas arrived within ${spread} ms: buffered`);
    const { body } = await chat(prompt);
    assert.equal(text(evs), body.message.content);
    assert.deepEqual(evs.map((e) => e.name).filter((n) => n !== 'delta'), ['start', 'usage', 'done']);
  });

  test('an error event before the first token falls back', async () => {
    const evs = await stream(unique('sim:openai:error_event=0'));
    assert.equal(evs[0].data.provider, 'anthropic');
    assert.match(text(evs), /^Hello from anthropic/);
    assert.equal(evs.at(-1).name, 'done');
  });

  test('a stream cut after the first tokens ends with an error event and no switch', async () => {
    const evs = await stream(unique('sim:openai:cut=3'));
    assert.equal(evs[0].data.provider, 'openai');
    assert.equal(evs.at(-1).name, 'error');
    assert.equal(evs.at(-1).data.code, 'stream_interrupted');
    assert.ok(!evs.some((e) => e.name === 'done'));
    assert.ok(!text(evs).includes('anthropic'));
    assert.equal(evs.filter((e) => e.name === 'delta').length, 3);
  });

  test('/v1/process routes with auto, runs the mode and reports the decision', async () => {
    // A fixed greeting (a random id in it is text the learned router scores too), asked afresh.
    const res = await fetch(`${base}/v1/process`, {
      method: 'POST', headers: { ...auth(), 'cache-control': 'no-cache' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi there' }], mode: 'auto' }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.routing.mode, 'chat');
    assert.equal(body.routing.tier, 'system1');
    assert.equal(res.headers.get('x-routing-tier'), 'system1');
    assert.match(body.message.content, /^Hello from openai/);
    const streamed = await fetch(`${base}/v1/process`, {
      method: 'POST', headers: auth(), body: JSON.stringify({ messages: [{ role: 'user', content: unique('hello') }], mode: 'chat', stream: true }),
    });
    const evs = await events(streamed);
    assert.equal(evs[0].name, 'routing');
    assert.equal(evs.at(-1).name, 'done');
  });

  test('chat on System 2 is an agent: it searches with the platform tools and cites what it found', async () => {
    const ask = (extra) => fetch(`${base}/v1/process`, {
      method: 'POST', headers: auth(),
      body: JSON.stringify({ messages: [{ role: 'user', content: unique('what changed in the EU AI Act') }], mode: 'chat', tier: 'system2', ...extra }),
    });
    const res = await ask({});
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.routing.tier, 'system2');
    assert.match(body.routing.reasons[0], /tier `system2` requested/);
    assert.deepEqual(body.agent.steps.map((s) => s.kind), ['model', 'tool', 'model']);
    assert.deepEqual(body.agent.steps[0].tool_calls, ['web_search']);
    assert.equal(body.agent.steps[1].ok, true, JSON.stringify(body.agent.steps[1]));
    // The simulator's model quotes the tool results it was given: the search reached it.
    assert.match(body.message.content, /Tool results: \[1\] /);
    assert.ok(body.citations.length > 0 && body.citations.every((c, i) => c.index === i + 1 && c.url.startsWith('https://')), JSON.stringify(body.citations));
    assert.ok(body.usage.cost_usd > 0, JSON.stringify(body.usage));

    const evs = await events(await ask({ stream: true }));
    const names = evs.map((e) => e.name);
    assert.deepEqual(names.slice(0, 4), ['routing', 'start', 'step', 'step'], names.join(','));
    assert.ok(names.includes('delta') && !names.includes('tool_call'), names.join(','));
    assert.deepEqual(names.slice(-2), ['usage', 'done']);
    assert.ok(evs.at(-1).data.citations.length > 0);
  });

  test('admin metrics count requests per tier, for admins only', async () => {
    await chat(unique('count me'));
    const admin = { authorization: `Bearer ${token({ role: 'admin' })}` };
    let body;
    // Each instance writes its totals at most once a second, after its responses; another
    // instance's earlier write (errors only, say) may already count requests but no tokens.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${base}/admin/metrics?hours=1`, { headers: admin });
      assert.equal(res.status, 200);
      body = await res.json();
      if (body.tiers.system1?.tokens?.total > 0 && body.modes.chat?.requests > 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(body.tiers.system1.requests > 0, JSON.stringify(body));
    assert.ok(body.tiers.system1.tokens.total > 0);
    assert.ok(body.modes.chat.requests > 0);
    const denied = await fetch(`${base}/admin/metrics`, { headers: { authorization: `Bearer ${token()}` } });
    assert.equal(denied.status, 403);
  });
});
