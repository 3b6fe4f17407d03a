// End to end: the official `openai` Node SDK and the Vercel AI SDK (`ai` with
// `@ai-sdk/openai-compatible`), unchanged, against the built functions on one runtime
// (E2E_RUNTIME=cloudflare|spin) and the provider simulator: `/v1/chat/completions` whole and
// streamed, usage on request only, tool calls assembled by the SDK's own stream helper and sent
// back, fallback under the SDK, a cut stream raising, and errors raising the SDK's own classes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, streamText, tool } from 'ai';
import { z } from 'zod';
import { startPlatform, stopAll, token, weather } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
const unique = (text) => `${text} ${randomUUID()}`;
let base;
// No retries: every error must surface as it is, once.
const client = (apiKey = token()) => new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
const user = (content) => [{ role: 'user', content }];


describe(`the openai SDK on ${runtime}`, () => {
  before(async () => {
    ({ base } = await startPlatform(runtime, {
      ATTEMPT_TIMEOUT_MS: '1500', MAX_RETRIES: '0', RETRY_BACKOFF_MS: '10',
    }, { sandbox: false }));
  });
  after(stopAll);

  test('chat.completions.create answers a chat.completion', async () => {
    const completion = await client().chat.completions.create({ model: 'opencode/chat', messages: user(unique('hello')) });
    assert.equal(completion.object, 'chat.completion');
    assert.match(completion.id, /^chatcmpl-/);
    const [choice] = completion.choices;
    assert.equal(choice.finish_reason, 'stop');
    assert.equal(choice.message.role, 'assistant');
    assert.match(choice.message.content, /^Hello from openai/);
    assert.ok(completion.usage.prompt_tokens > 0 && completion.usage.completion_tokens > 0);
    assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
    assert.equal(completion.opencode.provider, 'openai');
  });

  test('a stream carries usage only when include_usage asks for it', async () => {
    for (const streamOptions of [undefined, { include_usage: false }, { include_usage: true }]) {
      const stream = await client().chat.completions.create({
        model: 'opencode/chat', messages: user(unique('stream me')), stream: true,
        ...(streamOptions ? { stream_options: streamOptions } : {}),
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.equal(chunks[0].choices[0].delta.role, 'assistant');
      const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
      assert.match(text, /^Hello from openai/);
      const withUsage = chunks.filter((c) => c.usage);
      if (streamOptions?.include_usage) {
        assert.equal(withUsage.length, 1);
        assert.equal(chunks.at(-1), withUsage[0], 'usage comes last');
        assert.deepEqual(withUsage[0].choices, []);
        assert.ok(withUsage[0].usage.total_tokens > 0);
      } else {
        assert.equal(withUsage.length, 0, JSON.stringify(streamOptions));
        // Every chunk has a choice to index.
        assert.ok(chunks.every((c) => c.choices.length === 1));
      }
      assert.ok(chunks.some((c) => c.choices[0]?.finish_reason === 'stop'));
    }
  });

  test('tool calls, whole and streamed, assembled by the SDK and sent back', async () => {
    const question = `Weather in ${randomUUID()}`;
    const first = await client().chat.completions.create({ model: 'opencode/chat', messages: user(question), tools: [weather] });
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    const [call] = first.choices[0].message.tool_calls;
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: question });

    // The SDK's own stream helper assembles the pieces (it needs each piece's `index`).
    const runner = client().chat.completions.stream({ model: 'opencode/chat', messages: user(question), tools: [weather] });
    const streamed = await runner.finalChatCompletion();
    const [streamedCall] = streamed.choices[0].message.tool_calls;
    assert.equal(streamedCall.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(streamedCall.function.arguments), { city: question });
    assert.equal(streamed.choices[0].finish_reason, 'tool_calls');

    const result = `sunny ${randomUUID()}`;
    const last = await client().chat.completions.create({
      model: 'opencode/chat',
      messages: [...user(question), first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: result }],
      tools: [weather],
    });
    assert.equal(last.choices[0].finish_reason, 'stop');
    assert.ok(last.choices[0].message.content.endsWith(`Tool results: ${result}`), last.choices[0].message.content);
  });

  test('fallback happens under the SDK', async () => {
    const completion = await client().chat.completions.create({
      model: 'opencode/chat', messages: user(unique('sim:openai:status=503')),
    });
    assert.match(completion.choices[0].message.content, /^Hello from anthropic/);
    assert.equal(completion.opencode.provider, 'anthropic');
    assert.ok(completion.opencode.attempts >= 2);
  });

  test('a stream cut after its first tokens raises in the SDK', async () => {
    const stream = await client().chat.completions.create({
      model: 'opencode/chat', messages: user(unique('sim:openai:cut=3')), stream: true,
    });
    let text = '';
    await assert.rejects(async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    }, (err) => err instanceof OpenAI.APIError && /stream|interrupt|ended|broke/i.test(err.message));
    assert.ok(text.length > 0, 'tokens arrived before the cut');
  });

  test('the Vercel AI SDK generates, streams and calls tools', async () => {
    const provider = createOpenAICompatible({ name: 'opencode', baseURL: `${base}/v1`, apiKey: token(), includeUsage: true });
    const model = provider('opencode/chat');
    const { text, usage, finishReason } = await generateText({ model, prompt: unique('hello'), maxRetries: 0 });
    assert.match(text, /^Hello from openai/);
    assert.equal(finishReason, 'stop');
    assert.ok(usage.totalTokens > 0, JSON.stringify(usage));

    const streamed = streamText({ model, prompt: unique('stream'), maxRetries: 0 });
    let joined = '';
    for await (const piece of streamed.textStream) joined += piece;
    assert.match(joined, /^Hello from openai/);
    assert.ok((await streamed.usage).totalTokens > 0);

    const question = `Weather in ${randomUUID()}`;
    const called = await generateText({
      model, prompt: question, maxRetries: 0,
      tools: { get_weather: tool({ description: 'Current weather for a city', inputSchema: z.object({ city: z.string() }) }) },
    });
    assert.equal(called.finishReason, 'tool-calls');
    assert.deepEqual(called.toolCalls[0].input, { city: question });
  });

  test('images reach each vendor in its own format', async () => {
    // A 1x1 PNG; the simulator echoes each image it was shown as `[image <type>]`.
    const png = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    const content = [{ type: 'text', text: unique('what is this?') }, { type: 'image_url', image_url: { url: png, detail: 'low' } }];
    for (const model of ['opencode/chat', 'anthropic/claude-haiku-4-5', 'gemini/gemini-2.5-flash']) {
      const completion = await client().chat.completions.create({ model, messages: [{ role: 'user', content }] });
      assert.match(completion.choices[0].message.content, /\[image image\/png\]/, model);
    }
  });

  test('errors raise the SDK classes by status', async () => {
    const create = (body, apiKey) => client(apiKey).chat.completions.create({ model: 'opencode/chat', messages: user('hi'), ...body });
    await assert.rejects(create({ n: 2 }), (err) => err instanceof OpenAI.BadRequestError && err.param === 'n');
    await assert.rejects(create({ bogus: true }), (err) => err instanceof OpenAI.BadRequestError && /Unrecognized request argument/.test(err.message));
    await assert.rejects(create({}, 'not-a-token'), (err) => err instanceof OpenAI.AuthenticationError);
    // A model of a provider that is not configured (a bare name goes to the first provider).
    await assert.rejects(create({ model: 'compat/some-model' }), (err) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found');
    // Every provider rate limited (the simulator asks for 2 s): a 429 whose Retry-After is the
    // upstream's, which an SDK with retries waits out.
    await assert.rejects(create({ messages: user(unique('sim:any:retry_after=2')) }), (err) =>
      err instanceof OpenAI.RateLimitError && err.code === 'rate_limit_exceeded' && err.headers.get('retry-after') === '2');
    // A user's token on the admin API, through the SDK's own request method.
    await assert.rejects(client().get(`${base}/admin/metrics`), (err) => err instanceof OpenAI.PermissionDeniedError && /role `member` may not read metrics/.test(err.message));
  });
});
