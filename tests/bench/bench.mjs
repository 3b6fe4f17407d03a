// Benchmarks the platform against the provider simulator and prints numbers (it asserts
// nothing: tests assert behaviour, this prints what it costs).
//
//   node tests/bench/bench.mjs [cloudflare|wrangler|spin]...
//
// For each runtime: the latency the platform adds over calling the simulator directly
// (p50/p99, non-streamed chat, and a streamed one's first byte and first token), the same for the
// public /health floor, requests per second at a small concurrency, and each function's Wasm
// size raw and gzipped; on Spin also the runtime's own floor for chat's I/O (a bare component
// relaying the same call, whole and streamed), the machine's (that relay done natively, no
// Wasm: one extra loopback hop) and, with WASMTIME_BIN, the same relay under `wasmtime serve`.
// Runtimes: cloudflare = workerd through
// Miniflare (the engine `wrangler dev` runs), wrangler = `wrangler dev` itself
// (scripts/cloudflare/serve, as scripts/dev runs it; its target is measured over its own
// /health floor), spin = tests/spin-host.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { root, target, startPlatform, startProcess, startSpinHost, stopAll, token } from '../e2e/suite/harness.mjs';

const N = Number(process.env.BENCH_N || 1000);
const SECONDS = Number(process.env.BENCH_SECONDS || 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY || 8);

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// One request; resolves with [ms to first body byte, ms to end, ms until the body so far first
// matches `token` (a stream's first content token; the end when there is none)].
function request(url, { method = 'GET', headers = {}, body, token } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let first = null;
    let tokenAt = null;
    let text = '';
    const req = http.request(url, { method, headers, agent }, (res) => {
      res.on('data', (chunk) => {
        first ??= process.hrtime.bigint();
        if (token && tokenAt === null && token.test(text += chunk)) tokenAt = process.hrtime.bigint();
      });
      res.on('end', () => {
        const end = process.hrtime.bigint();
        if (res.statusCode >= 400) return reject(new Error(`${url} -> ${res.statusCode}`));
        resolve([first ?? end, end, tokenAt ?? end].map((t) => Number(t - t0) / 1e6));
      });
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function series(fn, which = 1) {
  for (let i = 0; i < 30; i++) await fn(); // warm-up
  const xs = [];
  for (let i = 0; i < N; i++) xs.push((await fn())[which]);
  return { p50: pct(xs, 50), p99: pct(xs, 99) };
}

// Several calls alternated request by request, so that all see the same moment of a shared,
// noisy machine (series run one after the other drift apart). One summary per call.
async function alternated(fns, which = 1) {
  for (let i = 0; i < 30; i++) for (const fn of fns) await fn(); // warm-up
  const samples = fns.map(() => []);
  for (let i = 0; i < N; i++) {
    for (const [k, fn] of fns.entries()) samples[k].push((await fn())[which]);
  }
  return samples.map((xs) => ({ p50: pct(xs, 50), p99: pct(xs, 99) }));
}

// The platform and the direct call it is compared with.
const paired = (platformFn, directFn, which = 1) => alternated([platformFn, directFn], which);

async function throughput(fn) {
  const until = Date.now() + SECONDS * 1000;
  let done = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < until) { await fn(); done++; }
  }));
  return done / SECONDS;
}

const fmt = (x) => x.toFixed(3).padStart(8);
function row(name, platform, direct) {
  console.log(`  ${name.padEnd(30)} p50 ${fmt(platform.p50)} ms  p99 ${fmt(platform.p99)} ms` +
    (direct ? `   added: p50 ${fmt(platform.p50 - direct.p50)} ms  p99 ${fmt(platform.p99 - direct.p99)} ms` : ''));
}

// Each Spin component's Wasm, as spin.toml names it (the build profile differs by function).
function spinSources() {
  const manifest = readFileSync(join(root, 'spin.toml'), 'utf8');
  const sources = {};
  for (const [, name, source] of manifest.matchAll(/^\[component\.([\w-]+)\]\s*\nsource = "([^"]+)"/gm)) {
    sources[name] = join(target, source.replace(/^target\//, ''));
  }
  return sources;
}

function sizes(runtime) {
  const out = [];
  const spin = runtime === 'spin' ? spinSources() : {};
  for (const f of ['gateway', 'chat', 'agent', 'knowledge', 'search', 'code', 'thinking', 'research', 'admin']) {
    const file = runtime !== 'spin' ? join(root, 'functions', f, 'build', 'index_bg.wasm') : spin[f];
    if (!file || !existsSync(file)) continue;
    const raw = readFileSync(file);
    out.push(`  ${f.padEnd(10)} ${(raw.length / 1024).toFixed(0).padStart(6)} KiB raw ${(gzipSync(raw, { level: 9 }).length / 1024).toFixed(0).padStart(6)} KiB gzipped`);
  }
  return out;
}

// The Spin runtime's own cost for a chat's I/O: the relay fixture (tests/spin-host/fixtures/relay:
// read the body, post it upstream, return the answer read whole, or streamed on as it arrives),
// a bare component on a host of its own, against the same direct call. What chat adds beyond it
// is the platform's own work. Beside it, the machine's floor: the same relay done natively
// (spin-host's native_relay example, no Wasm), which is what one extra loopback hop costs on
// this machine; and with WASMTIME_BIN set (a wasmtime-cli 48.0.8, the wasmtime spin-host is
// built on), the same Wasm under wasmtime's own `wasmtime serve`: the upstream runtime's figure.
// Its client opens a connection per outbound call (wasmtime-wasi-http's default_send_request),
// where spin-host, like Spin, pools them; so it bounds the runtime's cost from above.
async function spinFloor(upstream, streamedUpstream, chatAdded, streamedAdded) {
  const wasm = join(target, 'wasm32-wasip2', 'release', 'spin_host_relay.wasm');
  if (!existsSync(wasm)) {
    console.log('  runtime floor: skipped, the relay fixture is not built (scripts/bench builds it)');
    return;
  }
  const manifest = join(mkdtempSync(join(tmpdir(), 'bench-floor-')), 'spin.toml');
  writeFileSync(manifest, [
    'spin_manifest_version = 2', '[application]', 'name = "bench-floor"',
    '[[trigger.http]]', 'route = "/..."', 'component = "relay"',
    '[component.relay]', `source = ${JSON.stringify(wasm)}`, 'allowed_outbound_hosts = ["http://127.0.0.1:*"]', '',
  ].join('\n'));
  const base = await startSpinHost(manifest, {});
  const nativeBin = join(target, 'release', 'examples', 'native_relay');
  const native = existsSync(nativeBin) ? await startProcess(nativeBin, []) : null;
  const wasmtime = process.env.WASMTIME_BIN
    ? await startProcess(process.env.WASMTIME_BIN, ['serve', '-S', 'cli', '-S', 'p3', '--addr', '127.0.0.1:0', wasm], {},
      { ready: /Serving HTTP on (\S+?)\/?$/, output: 'stderr' })
    : null;
  const via = (at, up, query = '') => () => request(`${at}/relay?${query}url=${encodeURIComponent(up.url)}`, up);
  const compare = async (up, query, which) => {
    const others = [native, wasmtime].filter(Boolean);
    const [floor, direct, ...rest] = await alternated(
      [via(base, up, query), () => request(up.url, up), ...others.map((at) => via(at, up, query))], which);
    return { floor, direct, machine: native && rest[0], upstreamRuntime: wasmtime && rest.at(-1), added: floor.p50 - direct.p50 };
  };
  const machineRow = (name, { floor, direct, machine }) => {
    if (!machine) return console.log(`  ${name}: skipped, native_relay is not built (scripts/bench builds it)`);
    row(name, machine, direct);
    console.log(`  runtime floor's added over the machine's: p50 ${fmt((floor.p50 - direct.p50) - (machine.p50 - direct.p50))} ms`);
  };
  const wasmtimeRow = (name, { direct, upstreamRuntime }) => upstreamRuntime && row(name, upstreamRuntime, direct);
  const whole = await compare(upstream, '', 1);
  row('runtime floor: bare relay', whole.floor, whole.direct);
  console.log(`  chat added over the runtime floor's added: p50 ${fmt(chatAdded - whole.added)} ms`);
  machineRow('machine floor: native relay', whole);
  wasmtimeRow('same relay, wasmtime serve', whole);
  const streamed = await compare(streamedUpstream, 'stream=1&', 0);
  row('runtime floor: streamed relay', streamed.floor, streamed.direct);
  console.log(`  streamed first byte added over the floor's added: p50 ${fmt(streamedAdded - streamed.added)} ms`);
  machineRow('machine floor: streamed native', streamed);
  wasmtimeRow('streamed, wasmtime serve', streamed);
}

async function bench(runtime) {
  // No code sandbox: nothing here runs code, and it needs bubblewrap, which only scripts/test installs.
  const { sim, base } = await startPlatform(runtime, { PROVIDER_ORDER: 'openai' }, { sandbox: false });
  const auth = { authorization: `Bearer ${token()}`, 'content-type': 'application/json' };
  const messages = [{ role: 'user', content: 'Say hello to the benchmark' }];
  const upstreamChat = (stream) => ({
    url: `${sim}/v1/chat/completions`,
    method: 'POST', headers: { authorization: 'Bearer sim-key', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4.1-mini', messages, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) }),
  });
  // A stream's first content token: the platform's first `delta` event; the simulator's first
  // chunk with content (its first chunk carries only the role). The platform sends nothing
  // before the first token, so that it can still fall back; first byte alone would charge it
  // for the upstream's gap between those two chunks.
  const direct = (stream) => () => {
    const upstream = upstreamChat(stream);
    return request(upstream.url, { ...upstream, token: stream ? /"content":"[^"]/ : undefined });
  };
  // Latency over the upstream is measured past the System 1 cache (no-store); hits get their own row.
  const platform = (stream) => () => request(`${base}/v1/chat`, { method: 'POST', headers: { ...auth, 'cache-control': 'no-store' }, body: JSON.stringify({ messages, stream }), token: stream ? /event: delta/ : undefined });
  const cached = () => request(`${base}/v1/chat`, { method: 'POST', headers: auth, body: JSON.stringify({ messages, stream: false }) });

  const engine = { cloudflare: 'workerd via Miniflare', wrangler: 'wrangler dev', spin: 'tests/spin-host' }[runtime];
  console.log(`\n== ${runtime} (${engine}), ${N} sequential requests each, alternated with the call compared`);
  const [health, simHealth] = await paired(() => request(`${base}/health`), () => request(`${sim}/_sim/health`));
  row('GET /health (floor)', health, simHealth);
  const [chat, directChat] = await paired(platform(false), direct(false));
  row('chat, non-streamed', chat, directChat);
  const [streamed, directStreamed] = await paired(platform(true), direct(true), 0);
  row('chat, streamed: first byte', streamed, directStreamed);
  const [firstToken, directFirstToken] = await paired(platform(true), direct(true), 2);
  row('chat, streamed: first token', firstToken, directFirstToken);
  // Each vendor dialect against the platform's own /v1/chat, alternated: what its parsing,
  // rendering and (on Spin, where /v1/chat reaches chat directly) the gateway's routing by
  // model add. Streams are timed to their first content token.
  const vendor = (path, body, token) => () =>
    request(`${base}${path}`, { method: 'POST', headers: { ...auth, 'cache-control': 'no-store' }, body: JSON.stringify(body), token });
  const openaiBody = (stream) => ({ model: 'opencode/chat', messages, stream });
  const anthropicBody = (stream) => ({ model: 'opencode/chat', max_tokens: 256, messages, stream });
  const [ownWhole, openaiWhole, anthropicWhole] = await alternated([
    platform(false), vendor('/v1/chat/completions', openaiBody(false)), vendor('/v1/messages', anthropicBody(false)),
  ]);
  row('/v1/chat/completions, whole', openaiWhole, ownWhole);
  row('/v1/messages, whole', anthropicWhole, ownWhole);
  const [ownStream, openaiStream, anthropicStream] = await alternated([
    platform(true),
    vendor('/v1/chat/completions', openaiBody(true), /"content":"[^"]/),
    vendor('/v1/messages', anthropicBody(true), /text_delta/),
  ], 2);
  row('/v1/chat/completions, token', openaiStream, ownStream);
  row('/v1/messages, first token', anthropicStream, ownStream);
  console.log('  (added: over the platform\'s own /v1/chat, whole or streamed)');
  // The control plane: chat with an API key whose limits are counted on every request (a key
  // lookup, remembered per instance, and one counter statement), against the same chat with a JWT.
  const created = await fetch(`${base}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token({ role: 'owner' })}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', limits: { rpm: 1e12, tpm: 1e15, concurrency: 1e6 } }),
  }).then((r) => r.json());
  const keyed = { authorization: `Bearer ${created.key}`, 'content-type': 'application/json', 'cache-control': 'no-store' };
  const withKey = () => request(`${base}/v1/chat`, { method: 'POST', headers: keyed, body: JSON.stringify({ messages, stream: false }) });
  const [jwtChat, keyChat] = await alternated([platform(false), withKey]);
  row('chat, API key with limits', keyChat, jwtChat);
  console.log('  (added: over the same chat with a JWT: the key lookup and the limit check)');
  // The wrangler dev target: what chat adds over its direct call, beyond what the runtime adds
  // to the /health floor over the simulator's own health (all four alternated).
  const [c, d, h, s] = await alternated([platform(false), direct(false), () => request(`${base}/health`), () => request(`${sim}/_sim/health`)]);
  console.log(`  chat added over the /health floor's own added: p50 ${fmt((c.p50 - d.p50) - (h.p50 - s.p50))} ms` +
    ` (chat added ${fmt(c.p50 - d.p50)}, /health added ${fmt(h.p50 - s.p50)}; chat minus /health ${fmt(c.p50 - h.p50)})`);
  if (runtime === 'spin') {
    await spinFloor(upstreamChat(false), upstreamChat(true), chat.p50 - directChat.p50, streamed.p50 - directStreamed.p50);
  }
  // Tracing: the same chat on a second instance of the platform that sends its spans to an OTLP
  // collector (one that answers at once), alternated with this one, which sends none.
  const collector = http.createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200).end()); });
  await new Promise((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const otlp = `http://127.0.0.1:${collector.address().port}`;
  const traced = await startPlatform(runtime, { PROVIDER_ORDER: 'openai', OTEL_EXPORTER_OTLP_ENDPOINT: otlp }, { sandbox: false });
  const tracedChat = () => request(`${traced.base}/v1/chat`, { method: 'POST', headers: { ...auth, 'cache-control': 'no-store' }, body: JSON.stringify({ messages, stream: false }) });
  const [exportOff, exportOn] = await alternated([platform(false), tracedChat]);
  row('chat, OTLP export off', exportOff);
  row('chat, OTLP export on', exportOn, exportOff);
  console.log('  (added: export on over export off, two instances of the platform alternated)');
  collector.close();
  row('chat, System 1 cache hit', await series(cached));
  const rps = await throughput(platform(false));
  const directRps = await throughput(direct(false));
  console.log(`  throughput, ${CONCURRENCY} concurrent       ${rps.toFixed(0)} req/s (simulator alone: ${directRps.toFixed(0)} req/s)`);
  console.log('  wasm sizes:');
  for (const line of sizes(runtime)) console.log(line);
  stopAll();
}

const runtimes = process.argv.slice(2).length ? process.argv.slice(2) : ['cloudflare', 'wrangler', 'spin'];
for (const r of runtimes) await bench(r);
process.exit(0);
