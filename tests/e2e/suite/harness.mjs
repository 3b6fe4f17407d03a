// Starts the provider simulator, the code sandbox and one runtime serving the built Wasm
// functions, for the end-to-end suite and the benchmark. Children die with this process.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const root = new URL('../../..', import.meta.url).pathname;
export const target = process.env.CARGO_TARGET_DIR || join(root, 'target');
export const SECRET = 'e2e-secret-0123456789-0123456789';
/** The code sandbox's bearer token: tests/sandbox requires it and the platform sends it. */
export const SANDBOX_TOKEN = 'e2e-sandbox-token';

/** The function tool the tool-calling checks offer, in OpenAI's shape. */
export const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

const children = [];
process.on('exit', () => stopAll());

/**
 * Starts `cmd` (stopped with the others) and resolves to the URL it prints as `listening on URL`
 * on stdout, or as `ready` matches it (its first group) on `output` ('stdout' or 'stderr').
 */
export function startProcess(cmd, args, env = {}, { ready = /listening on (\S+)/, output = 'stdout', logs } = {}) {
  // With `logs` (an array), the child's stderr lines that are JSON objects (the platform's
  // structured log records) are collected there, and every line still goes to our stderr.
  const stdio = output === 'stderr' ? ['ignore', 'inherit', 'pipe'] : ['ignore', 'pipe', logs ? 'pipe' : 'inherit'];
  const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio });
  children.push(child);
  if (logs && output !== 'stderr') {
    createInterface({ input: child.stderr }).on('line', (line) => {
      process.stderr.write(`${line}\n`);
      const start = line.indexOf('{');
      if (start < 0) return;
      try { logs.push(JSON.parse(line.slice(start))); } catch { /* not a record */ }
    });
  }
  return new Promise((resolve, reject) => {
    createInterface({ input: child[output] }).on('line', (line) => {
      const m = line.match(ready);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`${cmd} exited with ${code}`)));
  });
}

export function stopAll() {
  // Negative pids reach whole process groups (wrangler and the workerd processes it spawns).
  while (children.length) {
    const child = children.pop();
    try { process.kill(child.detached ? -child.pid : child.pid, 'SIGTERM'); } catch { /* gone */ }
  }
}

const freePort = () => new Promise((resolve, reject) => {
  const server = createServer().listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
  server.on('error', reject);
});

/** `scripts/cloudflare/serve` (real `wrangler dev`), ready once its gateway answers /health. */
async function startWranglerDev(env) {
  const port = await freePort();
  const child = spawn(join(root, 'scripts/cloudflare/serve'), ['--port', String(port)], {
    cwd: root, env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'], detached: true,
  });
  children.push(child);
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`scripts/cloudflare/serve exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${base}/health`)).ok) return base;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('wrangler dev did not answer /health within 120 s');
}

/**
 * Starts the simulator, the code sandbox (tests/sandbox, as SANDBOX_URL; it needs bubblewrap,
 * so callers that do not run code, like the benchmark, pass `{ sandbox: false }`) and
 * `runtime`: cloudflare (workerd through Miniflare), wrangler (the same Workers under
 * `wrangler dev`, as scripts/dev runs them) or spin. Resolves to {sim, sandbox, base}.
 */
export async function startPlatform(runtime, extraEnv = {}, { sandbox: withSandbox = true, logs } = {}) {
  const [sim, sandbox] = await Promise.all([
    startProcess(join(target, 'debug', 'provider-sim'), ['--port', '0'], {}),
    withSandbox ? startProcess(join(target, 'debug', 'sandbox'), ['--port', '0'], { SANDBOX_TOKEN }) : undefined,
  ]);
  const env = {
    OPENAI_API_KEY: 'sim-key', OPENAI_BASE_URL: `${sim}/v1`,
    ANTHROPIC_API_KEY: 'sim-key', ANTHROPIC_BASE_URL: sim,
    GEMINI_API_KEY: 'sim-key', GEMINI_BASE_URL: sim,
    ...(sandbox ? { SANDBOX_URL: sandbox, SANDBOX_TOKEN } : {}),
    TAVILY_API_KEY: 'sim-key', TAVILY_BASE_URL: sim,
    BRAVE_API_KEY: 'sim-key', BRAVE_BASE_URL: sim,
    PROVIDER_ORDER: 'openai,anthropic,gemini', JWT_SECRET: SECRET, PORT: '0',
    ...extraEnv,
  };
  let base;
  if (runtime === 'cloudflare') {
    base = await startProcess('node', ['tests/e2e/cloudflare/serve.mjs', '--exit-with-parent'], env, { logs });
  } else if (runtime === 'wrangler') {
    base = await startWranglerDev(env);
  } else if (runtime === 'spin') {
    base = await startSpinHost('spin.toml', env, { logs });
  } else {
    throw new Error(`unknown runtime ${runtime}`);
  }
  return { sim, sandbox, base };
}

/**
 * tests/spin-host (SPIN_HOST_BIN, else the debug build) on `manifest`, with `env` as Spin variables
 * and a fresh SQLite `default` database holding the control plane's schema (as `spin up --sqlite`).
 */
export function startSpinHost(manifest, env, { logs } = {}) {
  const spinEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [`SPIN_VARIABLE_${k}`, v]));
  const dbDir = mkdtempSync(join(tmpdir(), 'spin-host-sqlite-'));
  process.on('exit', () => rmSync(dbDir, { recursive: true, force: true }));
  const sqlite = ['--sqlite-file', join(dbDir, 'sqlite_db.db'), '--sqlite', '@migrations/0001_control_plane.sql'];
  return startProcess(process.env.SPIN_HOST_BIN || join(target, 'debug', 'spin-host'), ['--manifest', manifest, '--listen', '127.0.0.1:0', ...sqlite], spinEnv, { logs });
}

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** An HS256 token like the users' identity provider would mint. */
export function token({ secret = SECRET, exp = Math.floor(Date.now() / 1000) + 3600, role = 'member', tenant = 'e2e', sub = 'e2e', claims = {} } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, tenant, role, iat: now, exp, ...claims });
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// Reads an SSE response, recording when each event arrived.
export async function events(res) {
  const out = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const name = frame.match(/^event: (.*)$/m)?.[1];
      const data = frame.match(/^data: (.*)$/m)?.[1];
      out.push({ name, data: JSON.parse(data), at: performance.now() });
    }
  }
  return out;
}
