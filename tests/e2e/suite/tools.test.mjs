// End to end: tool calling through the built `chat` function (behind the gateway) on one runtime
// (E2E_RUNTIME=cloudflare|spin), once per vendor (PROVIDER_ORDER is that vendor alone), against
// the provider simulator, which calls the first tool it is offered with the user's text as the
// argument and, given tool results, answers quoting them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { events, startPlatform, stopAll, token, weather } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
const auth = () => ({ authorization: `Bearer ${token()}`, 'content-type': 'application/json' });

async function chat(base, body) {
  const res = await fetch(`${base}/v1/chat`, { method: 'POST', headers: auth(), body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

for (const provider of ['openai', 'anthropic', 'gemini']) {
  describe(`tools with ${provider} on ${runtime}`, () => {
    let base;
    before(async () => {
      ({ base } = await startPlatform(runtime, { PROVIDER_ORDER: provider, ATTEMPT_TIMEOUT_MS: '3000', MAX_RETRIES: '0' }));
    });
    after(stopAll);

    test('a call, its result, then the answer that uses it', async () => {
      const question = `Weather in ${randomUUID()}`;
      const first = await chat(base, { messages: [{ role: 'user', content: question }], tools: [weather] });
      assert.equal(first.provider, provider);
      assert.equal(first.finish_reason, 'tool_calls');
      assert.equal(first.message.content, null);
      assert.equal(first.message.tool_calls.length, 1);
      const [call] = first.message.tool_calls;
      assert.equal(call.type, 'function');
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), { city: question });
      assert.ok(first.usage.input_tokens > 0 && first.usage.output_tokens > 0);

      const result = `18 degrees ${randomUUID()}`;
      const last = await chat(base, {
        messages: [
          { role: 'user', content: question },
          first.message,
          { role: 'tool', tool_call_id: call.id, content: result },
        ],
        tools: [weather],
      });
      assert.equal(last.finish_reason, 'stop');
      assert.equal(last.message.tool_calls, undefined);
      assert.ok(last.message.content.endsWith(`Tool results: ${result}`), last.message.content);
    });

    test('a streamed call arrives as tool_call pieces and done carries it whole', async () => {
      const question = `Weather in ${randomUUID()}`;
      const res = await fetch(`${base}/v1/chat`, {
        method: 'POST', headers: auth(),
        body: JSON.stringify({ messages: [{ role: 'user', content: question }], tools: [weather], stream: true }),
      });
      assert.equal(res.status, 200, res.status === 200 ? '' : await res.text());
      assert.match(res.headers.get('content-type'), /text\/event-stream/);
      const evs = await events(res);
      const names = evs.map((e) => e.name);
      assert.equal(names[0], 'start');
      assert.ok(!names.includes('delta'), names.join(','));
      const pieces = evs.filter((e) => e.name === 'tool_call').map((e) => e.data);
      assert.ok(pieces.length >= 1, names.join(','));
      assert.equal(pieces[0].index, 0);
      assert.equal(pieces[0].name, 'get_weather');
      if (provider !== 'gemini') assert.ok(pieces.length > 2, `${provider} streams arguments in pieces`);
      const args = pieces.map((p) => p.arguments).join('');
      assert.deepEqual(JSON.parse(args), { city: question });
      const done = evs.at(-1);
      assert.equal(done.name, 'done');
      assert.equal(done.data.finish_reason, 'tool_calls');
      const call = { id: pieces[0].id, type: 'function', function: { name: 'get_weather', arguments: args } };
      if (provider === 'gemini') {
        // Gemini's thought signature streams with its call and stays on the assembled one.
        assert.equal(typeof pieces[0].signature, 'string');
        call.signature = pieces[0].signature;
      }
      assert.deepEqual(done.data.tool_calls, [call]);
    });
  });
}
