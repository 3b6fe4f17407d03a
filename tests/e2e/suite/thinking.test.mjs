// End to end: the built `thinking` function (through the gateway) on one runtime
// (E2E_RUNTIME=cloudflare|spin) against the provider simulator, which returns reasoning only
// when a request carries the vendor's own control and refuses what the vendor refuses.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { events, startPlatform, stopAll, token } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
let base;
let sim;
const auth = () => ({ authorization: `Bearer ${token()}`, 'content-type': 'application/json' });
const unique = (text) => `${text} ${randomUUID()}`;

async function think(content, extra = {}) {
  const res = await fetch(`${base}/v1/thinking`, {
    method: 'POST', headers: auth(), body: JSON.stringify({ messages: [{ role: 'user', content }], ...extra }),
  });
  return { res, body: await res.json() };
}

async function stream(content, extra = {}) {
  const res = await fetch(`${base}/v1/thinking`, {
    method: 'POST', headers: auth(), body: JSON.stringify({ messages: [{ role: 'user', content }], stream: true, ...extra }),
  });
  assert.equal(res.status, 200, res.status === 200 ? '' : await res.text());
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  return events(res);
}

const joined = (evs, name) => evs.filter((e) => e.name === name).map((e) => e.data.text).join('');

/** The bodies the simulator received for requests whose text contains `marker`. */
async function wire(marker) {
  const log = await (await fetch(`${sim}/_sim/requests`)).json();
  return log.filter((r) => JSON.stringify(r.body).includes(marker)).map((r) => ({ provider: r.provider, body: r.body }));
}

describe(`thinking on ${runtime}`, () => {
  before(async () => {
    ({ sim, base } = await startPlatform(runtime, { ATTEMPT_TIMEOUT_MS: '3000', MAX_RETRIES: '0' }));
  });
  after(stopAll);

  test('each provider gets its own reasoning control and the reasoning comes back apart', async () => {
    const cases = [
      ['o4-mini', 'openai', (b) => assert.equal(b.reasoning_effort, 'high')],
      ['claude-haiku-4-5', 'anthropic', (b) => {
        assert.deepEqual(b.thinking, { type: 'enabled', budget_tokens: 16384 });
        assert.equal(b.max_tokens, 100 + 16384);
        assert.equal(b.temperature, undefined);
      }],
      ['gemini-2.5-flash', 'gemini', (b) => assert.deepEqual(b.generationConfig.thinkingConfig, { thinkingBudget: 16384, includeThoughts: true })],
    ];
    for (const [model, provider, check] of cases) {
      const prompt = unique('reason');
      const { res, body } = await think(prompt, { model, reasoning: { effort: 'high' }, include_thinking: true, max_tokens: 100, temperature: 0.2 });
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(body.object, 'thinking.answer');
      assert.equal(body.mode, 'thinking');
      assert.equal(body.provider, provider);
      assert.deepEqual(body.reasoning, { effort: 'high', budget_tokens: 16384 });
      assert.equal(body.message.content, `Hello from ${provider} (${model}). You said: ${prompt}`);
      const sent = await wire(prompt);
      assert.equal(sent.length, 1);
      check(sent[0].body);
      if (provider === 'openai') {
        // OpenAI never returns its reasoning text, only how many tokens it took.
        assert.equal(body.thinking, null);
        assert.ok(body.usage.reasoning_tokens > 0);
      } else {
        assert.match(body.thinking, new RegExp(`${provider} will echo`));
        assert.ok(!body.message.content.includes(body.thinking));
      }
    }
  });

  test('the reasoning is omitted from the answer unless asked for', async () => {
    const { res, body } = await think(unique('quietly'), { model: 'claude-haiku-4-5' });
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.thinking, undefined);
    assert.deepEqual(body.reasoning, { effort: 'medium', budget_tokens: 4096 });
    assert.equal(res.headers.get('x-provider'), 'anthropic');
  });

  test('a stream sends thinking events before and apart from the deltas', async () => {
    const prompt = unique('stream thoughts');
    const evs = await stream(prompt, { model: 'gemini-2.5-flash', reasoning: { budget_tokens: 2048 } });
    const names = evs.map((e) => e.name);
    assert.equal(names[0], 'start');
    assert.deepEqual(names.slice(-2), ['usage', 'done']);
    assert.ok(names.includes('thinking'), names.join());
    assert.ok(names.lastIndexOf('thinking') < names.indexOf('delta'), names.join());
    assert.equal(evs[0].data.mode, 'thinking');
    assert.equal(evs[0].data.provider, 'gemini');
    assert.match(joined(evs, 'thinking'), /gemini will echo/);
    assert.equal(joined(evs, 'delta'), `Hello from gemini (gemini-2.5-flash). You said: ${prompt}`);
    const done = evs.at(-1).data;
    assert.deepEqual(done.reasoning, { effort: 'medium', budget_tokens: 2048 });
    assert.equal(done.message, undefined);
    assert.equal(done.thinking, undefined);
    assert.ok(done.usage.reasoning_tokens > 0);

    const quiet = await stream(unique('no thoughts'), { model: 'gemini-2.5-flash', include_thinking: false });
    assert.ok(!quiet.some((e) => e.name === 'thinking'));
    assert.ok(quiet.some((e) => e.name === 'delta'));
  });

  test('a provider that refuses reasoning, or is down, falls back to the next', async () => {
    // gpt-4.1-mini is not a reasoning model: OpenAI answers 400.
    const { body } = await think(unique('fall back'), { include_thinking: true, model: 'gpt-4.1-mini' });
    assert.equal(body.provider, 'anthropic');
    assert.equal(body.attempts, 2);
    assert.equal(typeof body.thinking, 'string');

    // Streamed: anthropic (pinned by the model) is down; openai answers on its reasoning model
    // (no OPENAI_MODEL is set), not on its chat default, which would refuse.
    const evs = await stream(unique('sim:anthropic:status=503 again'), { model: 'claude-haiku-4-5' });
    assert.equal(evs[0].data.provider, 'openai');
    assert.equal(evs[0].data.model, 'gpt-5-mini');
    assert.equal(evs[0].data.attempts, 2);
    assert.match(joined(evs, 'delta'), /^Hello from openai \(gpt-5-mini\)/, 'each provider keeps its own model');
    assert.equal(evs.at(-1).name, 'done');
    assert.ok(evs.at(-1).data.usage.reasoning_tokens > 0);
  });

  test('bad bodies are 422 naming the problem', async () => {
    for (const extra of [
      { reasoning: { effort: 'maximal' } },
      { reasoning: { budget_tokens: 100 } },
      { reasoning: { effort: 'low', budget_tokens: 2048 } },
      { include_thinking: 'yes' },
    ]) {
      const { res, body } = await think('hi', extra);
      assert.equal(res.status, 422, JSON.stringify(extra));
      assert.equal(body.error.code, 'validation_failed');
    }
  });
});
