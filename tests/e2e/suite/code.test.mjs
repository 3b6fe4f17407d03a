// End to end: the `code` mode on one runtime (E2E_RUNTIME=cloudflare|spin): the built Wasm
// behind the gateway, the provider simulator playing the model (it answers code prompts with
// the first fenced block of the task, see tests/provider-sim/README.md) and the local Piston
// sandbox (tests/sandbox) running the programs over HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startPlatform, stopAll, token } from './harness.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';
const auth = () => ({ authorization: `Bearer ${token()}`, 'content-type': 'application/json' });
// A unique comment keeps every task's text apart in the simulator's counters and logs.
const program = (code, tag = 'python') => `# ${randomUUID()}\n\`\`\`${tag}\n${code}\n\`\`\``;

async function code(base, content, extra = {}) {
  const res = await fetch(`${base}/v1/code`, {
    method: 'POST', headers: auth(), body: JSON.stringify({ messages: [{ role: 'user', content }], ...extra }),
  });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { res, body };
}

function parseEvents(text) {
  return text.split('\n\n').filter(Boolean).map((frame) => ({
    name: frame.match(/^event: (.*)$/m)?.[1],
    data: JSON.parse(frame.match(/^data: (.*)$/m)?.[1]),
  }));
}

describe(`code on ${runtime}`, () => {
  let base;
  let down;
  before(async () => {
    const env = { ATTEMPT_TIMEOUT_MS: '10000', MAX_RETRIES: '1', RETRY_BACKOFF_MS: '10' };
    ({ base } = await startPlatform(runtime, env));
    // A second platform whose sandbox is a closed port.
    ({ base: down } = await startPlatform(runtime, { ...env, SANDBOX_URL: 'http://127.0.0.1:9' }));
  });
  after(stopAll);

  test('a program runs in the sandbox; the answer carries code, output and the explanation', async () => {
    const { res, body } = await code(base, program('print(2+3)'));
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.object, 'code.answer');
    assert.equal(body.mode, 'code');
    assert.equal(body.language, 'python');
    assert.equal(body.code, 'print(2+3)\n');
    assert.equal(body.execution.stdout, '5\n');
    assert.equal(body.execution.exit_code, 0);
    assert.equal(body.execution.status, null);
    assert.equal(body.succeeded, true);
    assert.equal(body.sandbox_error, null);
    assert.match(body.message.content, /^Hello from openai/);
    assert.deepEqual(body.agent.steps.map((s) => s.name), ['write_code', 'sandbox', 'write']);
    assert.ok(body.usage.total_tokens > 0);
  });

  test('JavaScript with stdin', async () => {
    const js = "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(s.trim().length))";
    const { res, body } = await code(base, program(js, 'javascript'), { language: 'javascript', stdin: 'four' });
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.language, 'javascript');
    assert.equal(body.execution.stdout, '4\n');
  });

  test('a failing program is fixed in a second round; stderr and exit code are kept', async () => {
    const task = `${program("import sys\nprint('boom', file=sys.stderr)\nsys.exit(4)")}\n\`\`\`python fix\nprint('fixed')\n\`\`\``;
    const { res, body } = await code(base, task, { max_attempts: 2 });
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.runs.length, 2);
    assert.equal(body.runs[0].execution.exit_code, 4);
    assert.equal(body.runs[0].execution.stderr, 'boom\n');
    assert.equal(body.runs[0].execution.status, 'RE');
    assert.equal(body.execution.stdout, 'fixed\n');
    assert.equal(body.succeeded, true);
  });

  test('an endless loop is a timeout result, not an error', async () => {
    const { res, body } = await code(base, program('while True:\n    pass'), { max_attempts: 1, run_timeout_ms: 500 });
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.execution.status, 'TO');
    assert.equal(body.execution.timed_out, true);
    assert.equal(body.succeeded, false);
  });

  test('the stream shows steps, the code, each run and the explanation', async () => {
    const task = `${program('raise SystemExit(2)')}\n\`\`\`python fix\nprint('ok')\n\`\`\``;
    const { res, body } = await code(base, task, { stream: true });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const evs = parseEvents(body);
    const names = evs.map((e) => e.name).filter((n, i, all) => n !== all[i - 1]);
    assert.deepEqual(names, ['start', 'step', 'code', 'step', 'execution', 'step', 'code', 'step', 'execution', 'delta', 'usage', 'done']);
    assert.equal(evs[0].data.mode, 'code');
    const runs = evs.filter((e) => e.name === 'execution').map((e) => e.data.execution);
    assert.equal(runs[0].exit_code, 2);
    assert.equal(runs[1].stdout, 'ok\n');
    assert.match(evs.filter((e) => e.name === 'delta').map((e) => e.data.text).join(''), /^Hello from openai/);
    assert.equal(evs.at(-1).data.execution.stdout, 'ok\n');
  });

  test('bad bodies are 422', async () => {
    for (const extra of [{ language: 'ruby' }, { max_attempts: 9 }, { run_timeout_ms: -1 }, { nope: 1 }]) {
      const { res, body } = await code(base, 'x', extra);
      assert.equal(res.status, 422, JSON.stringify(extra));
      assert.equal(body.error.code, 'validation_failed');
    }
  });

  test('a sandbox that is down is a clear result with the program, not a 5xx', async () => {
    const { res, body } = await code(down, program('print(1)'));
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.code, 'print(1)\n');
    assert.equal(body.execution, null);
    assert.equal(body.sandbox_error.code, 'sandbox_unreachable');
    assert.match(body.message.content, /^The code could not be run/);
    assert.ok(!JSON.stringify(body).includes('e2e-sandbox-token'));
  });
});
