// A test OTLP/HTTP trace receiver (a stand-in collector) for the end-to-end suite. It decodes what
// it is sent with the reference definitions of OTLP, opentelemetry-proto v1.7.0's
// `ExportTraceServiceRequest` (vendored in ./otlp-proto, see its README), loaded by protobufjs:
// never with the platform's own encoder, nor a hand-written decoder.
//
//   const otlp = await startOtlpReceiver();       // listens on 127.0.0.1, port 0
//   ... point the platform at `${otlp.url}/v1/traces` ...
//   const spans = await otlp.waitForSpans((s) => s.some((x) => x.name === 'chat'));
//   await otlp.close();
//
// Bodies: `application/x-protobuf` (binary) or `application/json` (OTLP's JSON encoding: ProtoJSON
// with hex trace and span ids, read with protobufjs's ProtoJSON reader, unknown fields ignored as
// OTLP requires), optionally `content-encoding: gzip`. A decoded request is answered 200 with an
// empty `ExportTraceServiceResponse` in the request's encoding; an unreadable one 400, another media
// type or encoding 415, another path or method 404/405. `setStatus(code)` makes every later
// request to /v1/traces answer `code` instead (a failing collector), its spans not kept.
//
// Each span from `spans()` is a plain object:
//   {
//     traceId, spanId, parentSpanId,       // lowercase hex strings; parentSpanId '' for a root
//     traceState,                          // string, '' when none
//     name,                                // string
//     kind,                                // number, OTLP's SpanKind: 0 unspecified, 1 internal,
//                                          //   2 server, 3 client, 4 producer, 5 consumer
//     flags,                               // number (OTLP's SpanFlags bits), 0 when not sent
//     startTimeUnixNano, endTimeUnixNano,  // BigInt nanoseconds (0n when not sent)
//     attributes,                          // { key: value }, see below
//     events: [{ name, timeUnixNano /* BigInt */, attributes }],
//     links: [{ traceId, spanId, traceState, attributes }],
//     status: { code, message },           // code: 0 unset, 1 ok, 2 error; { 0, '' } when not sent
//     resource,                            // the resource's attributes, { key: value }
//     scope,                               // the instrumentation scope's name ('' when none)
//     scopeVersion,                        // and its version
//   }
// An attribute's value: a string, a boolean, a number (doubleValue, and intValue when it is a safe
// integer, a BigInt beyond ±2^53), an array of such values (arrayValue), an object (kvlistValue), a
// Uint8Array (bytesValue), or null (an AnyValue with nothing set).
import { createServer } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import protojson from 'protobufjs/ext/protojson.js';

const protoDir = fileURLToPath(new URL('./otlp-proto/', import.meta.url));

/** The reference OTLP types, loaded once from the vendored .proto files. */
export const otlpTypes = (() => {
  const root = protobuf.loadSync(`${protoDir}trace_service.proto`);
  root.resolveAll();
  return {
    root,
    ExportTraceServiceRequest: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
    ExportTraceServiceResponse: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse'),
    SpanKind: root.lookupEnum('opentelemetry.proto.trace.v1.Span.SpanKind').values,
    StatusCode: root.lookupEnum('opentelemetry.proto.trace.v1.Status.StatusCode').values,
  };
})();

const { ExportTraceServiceRequest: Request, ExportTraceServiceResponse: Response } = otlpTypes;

/** Bytes (a Uint8Array, or protobufjs's empty default array) as lowercase hex. */
const hex = (bytes) => Buffer.from(bytes ?? []).toString('hex');

/** A 64-bit integer from protobufjs (a Long, or a number without long.js) as a BigInt. */
const big = (n) => (n == null ? 0n : BigInt(n.toString()));

function anyValue(any) {
  if (!any || !any.value) return null;
  switch (any.value) {
    case 'stringValue': return any.stringValue;
    case 'boolValue': return any.boolValue;
    case 'doubleValue': return any.doubleValue;
    case 'intValue': {
      const n = big(any.intValue);
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    case 'arrayValue': return (any.arrayValue.values ?? []).map(anyValue);
    case 'kvlistValue': return attributes(any.kvlistValue.values);
    case 'bytesValue': return new Uint8Array(any.bytesValue);
    default: return null;
  }
}

function attributes(keyValues) {
  const out = {};
  for (const kv of keyValues ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

/** A decoded `ExportTraceServiceRequest` as the receiver's plain spans. */
export function plainSpans(request) {
  const out = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = attributes(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        out.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          traceState: span.traceState ?? '',
          name: span.name ?? '',
          kind: span.kind ?? 0,
          flags: span.flags ?? 0,
          startTimeUnixNano: big(span.startTimeUnixNano),
          endTimeUnixNano: big(span.endTimeUnixNano),
          attributes: attributes(span.attributes),
          events: (span.events ?? []).map((e) => ({
            name: e.name ?? '',
            timeUnixNano: big(e.timeUnixNano),
            attributes: attributes(e.attributes),
          })),
          links: (span.links ?? []).map((l) => ({
            traceId: hex(l.traceId),
            spanId: hex(l.spanId),
            traceState: l.traceState ?? '',
            attributes: attributes(l.attributes),
          })),
          status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
          resource,
          scope: scopeSpans.scope?.name ?? '',
          scopeVersion: scopeSpans.scope?.version ?? '',
        });
      }
    }
  }
  return out;
}

/**
 * OTLP JSON's one deviation from ProtoJSON that a reader must undo: trace and span ids are hex
 * strings, not base64. Rewrites them (in place) to base64 for the ProtoJSON reader, rejecting
 * anything that is not hex. Both the lowerCamelCase and the proto field names are accepted, as
 * ProtoJSON accepts both.
 */
function hexIdsToBase64(json) {
  const convert = (obj, keys, where) => {
    if (!obj || typeof obj !== 'object') return;
    for (const key of keys) {
      const v = obj[key];
      if (v == null) continue;
      if (typeof v !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(v)) {
        throw new Error(`${where}.${key}: OTLP JSON wants a hex string, got ${JSON.stringify(v)}`);
      }
      obj[key] = Buffer.from(v, 'hex').toString('base64');
    }
  };
  const list = (obj, camel, snake) => {
    const v = obj?.[camel] ?? obj?.[snake];
    return Array.isArray(v) ? v : [];
  };
  for (const rs of list(json, 'resourceSpans', 'resource_spans')) {
    for (const ss of list(rs, 'scopeSpans', 'scope_spans')) {
      for (const span of list(ss, 'spans', 'spans')) {
        convert(span, ['traceId', 'trace_id', 'spanId', 'span_id', 'parentSpanId', 'parent_span_id'], 'span');
        for (const link of list(span, 'links', 'links')) {
          convert(link, ['traceId', 'trace_id', 'spanId', 'span_id'], 'link');
        }
      }
    }
  }
  return json;
}

/** Decodes one request body by its media type: a protobufjs message of ExportTraceServiceRequest. */
export function decodeRequest(mediaType, body) {
  if (mediaType === 'application/x-protobuf') return Request.decode(body);
  if (mediaType === 'application/json') {
    const json = JSON.parse(body.toString('utf8'));
    const message = protojson.fromJson(Request, hexIdsToBase64(json), { ignoreUnknownFields: true });
    // The ProtoJSON reader leaves nested messages as plain objects (no oneof accessors): one trip
    // through the binary encoding makes them the same message classes the protobuf path yields.
    return Request.decode(Request.encode(message).finish());
  }
  throw new Error(`unsupported content-type ${mediaType}`);
}

/** OTLP JSON for a request (used by the self-test): ProtoJSON with hex ids and integer enums. */
export function encodeRequestJson(request) {
  const message = request instanceof Request.ctor ? request : Request.fromObject(request);
  const json = protojson.toJson(Request, message);
  const toHex = (obj, keys) => {
    for (const key of keys) if (typeof obj[key] === 'string') obj[key] = Buffer.from(obj[key], 'base64').toString('hex');
  };
  for (const rs of json.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const span of ss.spans ?? []) {
        toHex(span, ['traceId', 'spanId', 'parentSpanId']);
        if (typeof span.kind === 'string') span.kind = otlpTypes.SpanKind[span.kind];
        if (typeof span.status?.code === 'string') span.status.code = otlpTypes.StatusCode[span.status.code];
        for (const link of span.links ?? []) toHex(link, ['traceId', 'spanId']);
      }
    }
  }
  return JSON.stringify(json);
}

/** The binary protobuf encoding of a request (used by the self-test). */
export function encodeRequestProtobuf(request) {
  const message = request instanceof Request.ctor ? request : Request.fromObject(request);
  return Buffer.from(Request.encode(message).finish());
}

/** JSON.stringify for dumps: BigInt as a string, bytes as hex. */
const dump = (value) => JSON.stringify(value, (_, v) => {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return `0x${Buffer.from(v).toString('hex')}`;
  return v;
}, 2);

/** Starts the receiver on 127.0.0.1 (a free port); resolves to its handle (see the top). */
export async function startOtlpReceiver() {
  const received = [];
  const contentTypes = [];
  const errors = [];
  let requests = 0;
  let status = 200;

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const path = new URL(req.url, 'http://receiver').pathname;
      if (path !== '/v1/traces') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route ${path}\n`);
        return;
      }
      if (req.method !== 'POST') {
        res.writeHead(405, { 'content-type': 'text/plain', allow: 'POST' }).end('POST only\n');
        return;
      }
      requests += 1;
      const contentType = req.headers['content-type'] ?? '';
      contentTypes.push(contentType);
      const fail = (code, message) => {
        errors.push({ status: code, contentType, message });
        res.writeHead(code, { 'content-type': 'text/plain' }).end(`${message}\n`);
      };
      if (status !== 200) {
        res.writeHead(status, { 'content-type': 'text/plain' }).end(`the test collector answers ${status}\n`);
        return;
      }
      const mediaType = contentType.split(';')[0].trim().toLowerCase();
      if (mediaType !== 'application/x-protobuf' && mediaType !== 'application/json') {
        fail(415, `unsupported content-type ${JSON.stringify(contentType)}`);
        return;
      }
      let body = Buffer.concat(chunks);
      const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      try {
        if (encoding === 'gzip') body = gunzipSync(body);
        else if (encoding !== 'identity' && encoding !== '') {
          fail(415, `unsupported content-encoding ${JSON.stringify(encoding)}`);
          return;
        }
      } catch (e) {
        fail(400, `bad gzip body: ${e.message}`);
        return;
      }
      let request;
      try {
        request = decodeRequest(mediaType, body);
      } catch (e) {
        fail(400, `could not decode an ExportTraceServiceRequest (${mediaType}): ${e.message}`);
        return;
      }
      received.push(...plainSpans(request));
      if (mediaType === 'application/json') {
        const json = JSON.stringify(protojson.toJson(Response, Response.create({})));
        res.writeHead(200, { 'content-type': 'application/json' }).end(json);
      } else {
        const bin = Buffer.from(Response.encode(Response.create({})).finish());
        res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': bin.length }).end(bin);
      }
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();

  const receiver = {
    url: `http://127.0.0.1:${port}`,
    /** Every span received so far (a copy), in arrival order. */
    spans: () => received.slice(),
    /** POSTs to /v1/traces so far, answered whatever way. */
    get requests() { return requests; },
    /** Each of those requests' content-type header, in order ('' when none). */
    get contentTypes() { return contentTypes.slice(); },
    /** The requests refused as unreadable (400) or unsupported (415): { status, contentType, message }. */
    get errors() { return errors.slice(); },
    /** Answers later requests with `code` (200 to accept again). */
    setStatus(code) { status = code; },
    /** Forgets what was received. */
    reset() {
      received.length = 0;
      contentTypes.length = 0;
      errors.length = 0;
      requests = 0;
    },
    /**
     * Polls until `predicate(spans())` is truthy and returns spans(); throws after `timeoutMs`
     * with what was received (a predicate that throws counts as not yet, its last error reported).
     */
    async waitForSpans(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let lastError;
      for (;;) {
        const spans = received.slice();
        try {
          if (predicate(spans)) return spans;
          lastError = undefined;
        } catch (e) {
          lastError = e;
        }
        if (Date.now() >= deadline) {
          const summary = spans.map((s) => ({
            name: s.name, kind: s.kind, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId,
            status: s.status, attributes: s.attributes, events: s.events.map((e) => e.name),
          }));
          throw new Error(
            `OTLP receiver: no match within ${timeoutMs} ms for ${predicate.toString()}\n`
            + (lastError ? `the predicate's last error: ${lastError.stack ?? lastError}\n` : '')
            + `${requests} request(s), content types ${dump(contentTypes)}`
            + (errors.length ? `, refused: ${dump(errors)}` : '')
            + `\n${spans.length} span(s): ${dump(summary)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** Stops listening and drops open connections. */
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
    },
  };
  return receiver;
}
