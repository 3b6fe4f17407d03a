// Self-test of the OTLP/HTTP test receiver (./otlp.mjs), without the platform (it runs the same
// whatever E2E_RUNTIME says): requests encoded with the same reference definitions
// (opentelemetry-proto's ExportTraceServiceRequest through protobufjs), in binary protobuf, in
// OTLP JSON and gzipped, decode to the expected plain spans; a failing collector answers its status.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { encodeRequestJson, encodeRequestProtobuf, otlpTypes, startOtlpReceiver } from './otlp.mjs';

const traceId = Buffer.from('5b8efff798038103d269b633813fc60c', 'hex');
const rootId = Buffer.from('eee19b7ec3c1b174', 'hex');
const childId = Buffer.from('eee19b7ec3c1b173', 'hex');

const str = (stringValue) => ({ stringValue });

/** Two spans, a root and its child, with an attribute of each AnyValue kind and an event. */
const request = {
  resourceSpans: [{
    resource: { attributes: [{ key: 'service.name', value: str('opencode-gateway') }, { key: 'faas.name', value: str('chat') }] },
    scopeSpans: [{
      scope: { name: 'opencode-platform', version: '0.1.0' },
      spans: [
        {
          traceId, spanId: rootId, traceState: 'vendor=1', name: 'POST /v1/chat/completions', kind: 2,
          startTimeUnixNano: '1700000000123456789', endTimeUnixNano: '1700000000987654321',
          attributes: [
            { key: 'http.request.method', value: str('POST') },
            { key: 'http.response.status_code', value: { intValue: 200 } },
            { key: 'offset', value: { intValue: -7 } },
            { key: 'huge', value: { intValue: '9007199254740993' } },
            { key: 'ratio', value: { doubleValue: 0.25 } },
            { key: 'stream', value: { boolValue: true } },
            { key: 'cached', value: { boolValue: false } },
            { key: 'gen_ai.response.finish_reasons', value: { arrayValue: { values: [str('stop'), str('length')] } } },
            { key: 'mixed', value: { arrayValue: { values: [{ intValue: 1 }, { doubleValue: 1.5 }, { boolValue: true }] } } },
            { key: 'kv', value: { kvlistValue: { values: [{ key: 'a', value: str('b') }] } } },
            { key: 'raw', value: { bytesValue: Buffer.from([0, 1, 255]) } },
          ],
          status: { code: 2, message: 'upstream failed' },
        },
        {
          traceId, spanId: childId, parentSpanId: rootId, name: 'chat gpt-test', kind: 3,
          startTimeUnixNano: '1700000000200000000', endTimeUnixNano: '1700000000900000000',
          attributes: [
            { key: 'gen_ai.request.model', value: str('gpt-test') },
            { key: 'gen_ai.usage.input_tokens', value: { intValue: 12 } },
          ],
          events: [{
            name: 'retry', timeUnixNano: '1700000000500000000',
            attributes: [{ key: 'attempt', value: { intValue: 2 } }, { key: 'reason', value: str('timeout') }],
          }],
        },
      ],
    }],
  }],
};

const resource = { 'service.name': 'opencode-gateway', 'faas.name': 'chat' };

/** What spans() must give for `request`, written out by hand. */
const expected = [
  {
    traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', parentSpanId: '',
    traceState: 'vendor=1', name: 'POST /v1/chat/completions', kind: 2, flags: 0,
    startTimeUnixNano: 1700000000123456789n, endTimeUnixNano: 1700000000987654321n,
    attributes: {
      'http.request.method': 'POST',
      'http.response.status_code': 200,
      offset: -7,
      huge: 9007199254740993n,
      ratio: 0.25,
      stream: true,
      cached: false,
      'gen_ai.response.finish_reasons': ['stop', 'length'],
      mixed: [1, 1.5, true],
      kv: { a: 'b' },
      raw: new Uint8Array([0, 1, 255]),
    },
    events: [],
    links: [],
    status: { code: 2, message: 'upstream failed' },
    resource,
    scope: 'opencode-platform',
    scopeVersion: '0.1.0',
  },
  {
    traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b173', parentSpanId: 'eee19b7ec3c1b174',
    traceState: '', name: 'chat gpt-test', kind: 3, flags: 0,
    startTimeUnixNano: 1700000000200000000n, endTimeUnixNano: 1700000000900000000n,
    attributes: { 'gen_ai.request.model': 'gpt-test', 'gen_ai.usage.input_tokens': 12 },
    events: [{ name: 'retry', timeUnixNano: 1700000000500000000n, attributes: { attempt: 2, reason: 'timeout' } }],
    links: [],
    status: { code: 0, message: '' },
    resource,
    scope: 'opencode-platform',
    scopeVersion: '0.1.0',
  },
];

const post = (url, body, headers) => fetch(`${url}/v1/traces`, { method: 'POST', body, headers });

describe('the OTLP test receiver', () => {
  let otlp;
  before(async () => { otlp = await startOtlpReceiver(); });
  after(() => otlp.close());
  beforeEach(() => { otlp.setStatus(200); otlp.reset(); });

  test('listens on 127.0.0.1', () => {
    assert.match(otlp.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test('binary protobuf decodes to the expected spans; the answer is an empty protobuf response', async () => {
    const res = await post(otlp.url, encodeRequestProtobuf(request), { 'content-type': 'application/x-protobuf' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-protobuf');
    const body = new Uint8Array(await res.arrayBuffer());
    assert.deepEqual(otlpTypes.ExportTraceServiceResponse.toObject(otlpTypes.ExportTraceServiceResponse.decode(body)), {});
    assert.deepEqual(otlp.spans(), expected);
    assert.equal(otlp.requests, 1);
    assert.deepEqual(otlp.contentTypes, ['application/x-protobuf']);
  });

  test('OTLP JSON (hex ids, integer enums) decodes to the same spans; the answer is JSON {}', async () => {
    const json = encodeRequestJson(request);
    const sent = JSON.parse(json).resourceSpans[0].scopeSpans[0].spans;
    assert.equal(sent[1].parentSpanId, 'eee19b7ec3c1b174', 'ids are hex in OTLP JSON');
    assert.equal(sent[1].kind, 3, 'enums are integers in OTLP JSON');
    assert.equal(sent[0].status.code, 2);
    const res = await post(otlp.url, json, { 'content-type': 'application/json; charset=utf-8' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    assert.deepEqual(await res.json(), {});
    assert.deepEqual(otlp.spans(), expected);
  });

  test('hand-written OTLP JSON as the specification shows it: int64 as strings, unknown fields ignored', async () => {
    const body = {
      resourceSpans: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
        scopeSpans: [{
          scope: { name: 'lib', version: '1' },
          spans: [{
            traceId: '5B8EFFF798038103D269B633813FC60C', spanId: 'EEE19B7EC3C1B174', parentSpanId: '',
            name: 'op', kind: 1, startTimeUnixNano: '1544712660000000000', endTimeUnixNano: 1544712661000000000,
            attributes: [{ key: 'n', value: { intValue: '42' } }, { key: 'b', value: { bytesValue: 'AAH/' } }, { key: 'none', value: {} }],
            droppedAttributesCount: 0, events: [], links: [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: '0102030405060708' }],
            status: {}, aFutureField: { x: 1 },
          }],
        }],
      }],
    };
    const res = await post(otlp.url, JSON.stringify(body), { 'content-type': 'application/json' });
    assert.equal(res.status, 200, await res.clone().text());
    const [span] = otlp.spans();
    assert.equal(span.traceId, '5b8efff798038103d269b633813fc60c');
    assert.equal(span.spanId, 'eee19b7ec3c1b174');
    assert.equal(span.parentSpanId, '');
    assert.equal(span.kind, 1);
    assert.equal(span.startTimeUnixNano, 1544712660000000000n);
    assert.equal(span.endTimeUnixNano, 1544712661000000000n);
    assert.deepEqual(span.attributes, { n: 42, b: new Uint8Array([0, 1, 255]), none: null });
    assert.deepEqual(span.links, [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: '0102030405060708', traceState: '', attributes: {} }]);
    assert.deepEqual(span.status, { code: 0, message: '' });
    assert.deepEqual(span.resource, { 'service.name': 'svc' });
    assert.equal(span.scope, 'lib');
  });

  test('gzip content-encoding is decompressed', async () => {
    const res = await post(otlp.url, gzipSync(encodeRequestProtobuf(request)), {
      'content-type': 'application/x-protobuf', 'content-encoding': 'gzip',
    });
    assert.equal(res.status, 200);
    assert.deepEqual(otlp.spans(), expected);
    const json = await post(otlp.url, gzipSync(encodeRequestJson(request)), {
      'content-type': 'application/json', 'content-encoding': 'gzip',
    });
    assert.equal(json.status, 200);
    assert.equal(otlp.spans().length, 4);
  });

  test('setStatus(503) answers 503 and keeps nothing, until setStatus(200)', async () => {
    otlp.setStatus(503);
    const res = await post(otlp.url, encodeRequestProtobuf(request), { 'content-type': 'application/x-protobuf' });
    assert.equal(res.status, 503);
    await res.arrayBuffer();
    assert.equal(otlp.requests, 1);
    assert.deepEqual(otlp.spans(), []);
    otlp.setStatus(200);
    const ok = await post(otlp.url, encodeRequestProtobuf(request), { 'content-type': 'application/x-protobuf' });
    assert.equal(ok.status, 200);
    assert.equal(otlp.requests, 2);
    assert.equal(otlp.spans().length, 2);
  });

  test('refuses what is not an OTLP trace export', async () => {
    const cases = [
      [{ 'content-type': 'text/plain' }, 'x', 415],
      [{ 'content-type': 'application/x-protobuf', 'content-encoding': 'br' }, 'x', 415],
      [{ 'content-type': 'application/x-protobuf' }, Buffer.from([0x0a, 0x05, 0x01]), 400],
      [{ 'content-type': 'application/json' }, '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not-hex"}]}]}]}', 400],
      [{ 'content-type': 'application/json' }, '{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}', 400],
      [{ 'content-type': 'application/json' }, '{', 400],
    ];
    for (const [headers, body, status] of cases) {
      const res = await post(otlp.url, body, headers);
      assert.equal(res.status, status, `${JSON.stringify(headers)} ${body}`);
      await res.arrayBuffer();
    }
    assert.equal(otlp.errors.length, cases.length);
    assert.deepEqual(otlp.spans(), []);
    const wrongPath = await fetch(`${otlp.url}/v1/metrics`, { method: 'POST', body: 'x' });
    assert.equal(wrongPath.status, 404);
    await wrongPath.arrayBuffer();
  });

  test('waitForSpans waits for spans that arrive later, and times out with a dump', async () => {
    const waiting = otlp.waitForSpans((spans) => spans.some((s) => s.name === 'chat gpt-test'), 5000);
    setTimeout(() => post(otlp.url, encodeRequestProtobuf(request), { 'content-type': 'application/x-protobuf' }).then((r) => r.arrayBuffer()), 100);
    assert.equal((await waiting).length, 2);
    await assert.rejects(
      otlp.waitForSpans((spans) => spans.find((s) => s.name === 'missing').kind === 1, 200),
      (e) => /no match within 200 ms/.test(e.message) && /chat gpt-test/.test(e.message)
        && /the predicate's last error: TypeError/.test(e.message) && /1700000000200000000|eee19b7ec3c1b173/.test(e.message),
    );
  });
});
