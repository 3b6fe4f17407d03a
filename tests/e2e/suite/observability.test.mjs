// End to end: observability on one runtime (E2E_RUNTIME=cloudflare|spin). A test OTLP collector
// decodes what the functions send with the reference protobuf definitions (otlp.mjs); /metrics
// is read by the reference Prometheus text parser (prometheus_client's, prometheus.mjs); the
// functions' log lines are read from the runtime's stderr.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { startPlatform, stopAll, token } from './harness.mjs';
import { startOtlpReceiver } from './otlp.mjs';
import { parsePrometheus } from './prometheus.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
const METRICS_TOKEN = 'e2e-metrics-token';
const SERVER = 2;
const CLIENT = 3;
let base;
let sim;
let collector;
const logs = [];

const auth = (role = 'member') => ({ authorization: `Bearer ${token({ role })}`, 'content-type': 'application/json' });
const hex = (n) => randomBytes(n).toString('hex');

/** POSTs a chat through the gateway (`/v1/process`: the gateway routes, then calls chat). */
function viaGateway(content, headers = {}) {
  return fetch(`${base}/v1/process`, {
    // System 1 named: these tests follow one provider call, whatever the router makes of the prompt.
    method: 'POST', headers: { ...auth(), ...headers }, body: JSON.stringify({ messages: [{ role: 'user', content }], mode: 'chat', tier: 'system1' }),
  });
}

async function eventually(check, ms = 15_000) {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe(`observability on ${runtime}`, () => {
  before(async () => {
    collector = await startOtlpReceiver();
    ({ base, sim } = await startPlatform(runtime, {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_SERVICE_NAME: 'opencode-e2e',
      METRICS_TOKEN,
      MAX_RETRIES: '0',
    }, { sandbox: false, logs }));
  });
  after(() => {
    stopAll();
    collector.close();
  });

  test('one request is one trace: the caller, the gateway, the function and the provider call', async () => {
    const [traceId, callerSpan] = [hex(16), hex(8)];
    const marker = `trace me ${randomUUID()}`;
    const res = await viaGateway(marker, { traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: 'e2e=1' });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    const timing = res.headers.get('server-timing');
    assert.match(timing, /^gateway;dur=\d+, upstream;dur=\d+/, timing);

    const spans = await collector.waitForSpans((all) => {
      const mine = all.filter((s) => s.traceId === traceId);
      return mine.some((s) => s.resource['faas.name'] === 'chat' && s.kind === SERVER)
        && mine.some((s) => s.resource['faas.name'] === 'gateway' && s.kind === SERVER)
        && mine.some((s) => s.kind === CLIENT);
    });
    const mine = spans.filter((s) => s.traceId === traceId);
    const gateway = mine.find((s) => s.resource['faas.name'] === 'gateway' && s.kind === SERVER);
    const chat = mine.find((s) => s.resource['faas.name'] === 'chat' && s.kind === SERVER);
    const call = mine.find((s) => s.kind === CLIENT && s.attributes['gen_ai.operation.name'] === 'chat');
    assert.equal(gateway.parentSpanId, callerSpan, 'the gateway is a child of the caller');
    assert.equal(chat.parentSpanId, gateway.spanId, 'the function is a child of the gateway');
    assert.equal(call.parentSpanId, chat.spanId, 'the provider call is a child of the function');
    assert.equal(gateway.traceState, 'e2e=1');
    assert.equal(gateway.resource['service.name'], 'opencode-e2e');
    assert.equal(gateway.attributes['http.request.method'], 'POST');
    assert.equal(gateway.attributes['http.route'], '/v1/process');
    assert.equal(gateway.attributes['http.response.status_code'], 200);
    assert.equal(chat.attributes['opencode.mode'], 'chat');
    assert.equal(chat.attributes['opencode.tier'], 'system1');
    assert.equal(call.name, `chat ${call.attributes['gen_ai.request.model']}`);
    assert.equal(call.attributes['gen_ai.provider.name'], 'openai');
    assert.ok(call.attributes['gen_ai.response.model']);
    assert.ok(call.attributes['gen_ai.usage.input_tokens'] > 0 && call.attributes['gen_ai.usage.output_tokens'] > 0);
    assert.deepEqual(call.attributes['gen_ai.response.finish_reasons'], ['stop']);
    assert.ok(call.endTimeUnixNano >= call.startTimeUnixNano);

    // The provider saw the same trace, its parent a span of this trace.
    const seen = await (await fetch(`${sim}/_sim/requests`)).json();
    const upstream = seen.find((r) => JSON.stringify(r.body).includes(marker));
    assert.match(upstream.headers.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

    // Content stays out by default; GenAI attributes stay on GenAI spans.
    for (const span of mine) {
      assert.ok(!JSON.stringify(span.attributes).includes(marker), `prompt in ${span.name}`);
      assert.ok(!JSON.stringify(span.attributes).includes('Hello from'), `answer in ${span.name}`);
      const genai = Object.keys(span.attributes).some((k) => k.startsWith('gen_ai.'));
      if (span.kind === SERVER) assert.ok(!genai, `gen_ai.* on ${span.name}`);
    }
  });

  test('a streamed answer carries its time to first token', async () => {
    const traceId = hex(16);
    const res = await fetch(`${base}/v1/process`, {
      method: 'POST', headers: { ...auth(), traceparent: `00-${traceId}-${hex(8)}-01` },
      body: JSON.stringify({ messages: [{ role: 'user', content: `stream ${randomUUID()}` }], mode: 'chat', tier: 'system1', stream: true }),
    });
    assert.equal(res.status, 200);
    await res.text();
    const spans = await collector.waitForSpans((all) => all.some((s) => s.traceId === traceId && s.kind === CLIENT
      && s.attributes['gen_ai.usage.output_tokens'] > 0));
    const call = spans.find((s) => s.traceId === traceId && s.kind === CLIENT);
    assert.equal(typeof call.attributes['gen_ai.response.time_to_first_chunk'], 'number');
  });

  test('a fallback is two CLIENT spans, the failed one with error.type', async () => {
    const traceId = hex(16);
    const res = await viaGateway(`sim:openai:status=503 ${randomUUID()}`, { traceparent: `00-${traceId}-${hex(8)}-01` });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    const spans = await collector.waitForSpans((all) => all.filter((s) => s.traceId === traceId && s.kind === CLIENT).length >= 2);
    const calls = spans.filter((s) => s.traceId === traceId && s.kind === CLIENT).sort((a, b) => Number(a.startTimeUnixNano - b.startTimeUnixNano));
    assert.equal(calls.length, 2, JSON.stringify(calls.map((c) => c.name)));
    assert.equal(calls[0].attributes['gen_ai.provider.name'], 'openai');
    assert.equal(calls[0].attributes['error.type'], 'http_5xx');
    assert.equal(calls[0].status.code, 2);
    assert.equal(calls[1].attributes['gen_ai.provider.name'], 'anthropic');
    assert.equal(calls[1].attributes['error.type'], undefined);
  });

  test('a collector that is down costs a log line, never the answer', async () => {
    collector.setStatus(503);
    try {
      const res = await viaGateway(`collector down ${randomUUID()}`);
      assert.equal(res.status, 200);
      await res.text();
      const dropped = await eventually(() => logs.some((r) => r.msg === 'trace export failed; spans dropped'));
      assert.ok(dropped, 'the dropped export is logged');
    } finally {
      collector.setStatus(200);
    }
  });

  test('each request logs one line with its request id, and never a key', async () => {
    const res = await viaGateway(`sim:openai:status=503 log me ${randomUUID()}`);
    assert.equal(res.status, 200);
    await res.text();
    const id = res.headers.get('x-request-id');
    const line = await eventually(() => logs.find((r) => r.msg === 'request' && r.request_id === id && r.function === 'chat'));
    assert.ok(line, `no request line for ${id}`);
    assert.equal(line.status, 200);
    assert.equal(line.mode, 'chat');
    assert.equal(line.tenant, 'e2e');
    assert.match(line.trace_id, /^[0-9a-f]{32}$/);
    assert.deepEqual(line.attempts.map((a) => [a.provider, a.outcome]), [['openai', 'http_5xx'], ['anthropic', 'ok']]);
    assert.ok(logs.some((r) => r.msg === 'request' && r.request_id === id && r.function === 'gateway'));
    const all = JSON.stringify(logs);
    assert.ok(!all.includes('sim-key'), 'a provider key in the logs');
    assert.ok(!all.includes(token()), 'a caller token in the logs');
    assert.ok(!all.includes('log me'), 'a prompt in the logs');
  });

  test('/metrics needs its token and shows the platform totals with bounded labels', async () => {
    assert.equal((await fetch(`${base}/metrics`)).status, 401);
    assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    const scrape = async () => {
      const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
      return parsePrometheus(await res.text());
    };
    // Each instance writes its totals at most once a second, after its responses.
    const families = await eventually(async () => {
      // An instance's last totals are written after its next response a second later: ask.
      await (await viaGateway(`flush ${randomUUID()}`)).text();
      const parsed = await scrape();
      const attempts = parsed.find((f) => f.name === 'opencode_provider_attempts');
      return attempts?.samples.some((s) => s.labels.outcome === 'http_5xx') ? parsed : null;
    }, 30_000);
    assert.ok(families, 'the fallback attempts reached /metrics');
    const family = (name) => families.find((f) => f.name === name);
    assert.equal(family('opencode_requests').type, 'counter');
    const chat = family('opencode_requests').samples.filter((s) => s.labels.function === 'chat' && s.labels.status_class === '2xx');
    assert.ok(chat.reduce((n, s) => n + s.value, 0) >= 3);
    assert.ok(family('opencode_requests').samples.some((s) => s.labels.function === 'gateway'));
    assert.equal(family('opencode_request_duration_seconds').type, 'histogram');
    assert.equal(family('opencode_upstream_duration_seconds').type, 'histogram');
    assert.equal(family('opencode_time_to_first_token_seconds').type, 'histogram');
    assert.ok(family('opencode_tokens').samples.some((s) => s.labels.type === 'output' && s.value > 0));
    assert.equal(family('opencode_cost_usd').type, 'counter');
    assert.ok(family('opencode_cache_lookups').samples.some((s) => s.labels.result === 'miss'));
    const labels = new Set(families.flatMap((f) => f.samples.flatMap((s) => Object.keys(s.labels))));
    for (const forbidden of ['tenant', 'key_id', 'request_id', 'sub', 'user']) assert.ok(!labels.has(forbidden), forbidden);
  });

  test('health stays public and cheap; readiness checks the stores and the database', async () => {
    const health = await fetch(`${base}/health`);
    const text = await health.text();
    assert.equal(health.status, 200);
    assert.ok(!text.includes(sim) && !text.includes('127.0.0.1'), `an address in /health: ${text}`);
    const ready = await fetch(`${base}/health/ready`);
    const body = await ready.json();
    assert.equal(ready.status, 200, JSON.stringify(body));
    assert.equal(body.status, 'ready');
    for (const check of ['kv_cache', 'kv_data', 'database']) assert.equal(body.checks[check].ok, true, check);
  });
});
