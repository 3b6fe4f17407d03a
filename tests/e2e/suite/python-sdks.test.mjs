// End to end: the official `openai` and `anthropic` Python SDKs, unchanged, against the built
// functions on one runtime (E2E_RUNTIME=cloudflare|spin) and the provider simulator. The SDKs
// come from PyPI at the versions and hashes tests/e2e/python/requirements.txt pins, into a
// virtual environment in the build cache, made again when that file changes (./python.mjs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root, startPlatform, stopAll, token } from './harness.mjs';
import { python } from './python.mjs';

const runtime = process.env.E2E_RUNTIME || 'cloudflare';

describe(`the Python SDKs on ${runtime}`, () => {
  let base;
  before(async () => {
    ({ base } = await startPlatform(runtime, { ATTEMPT_TIMEOUT_MS: '3000', MAX_RETRIES: '0', RETRY_BACKOFF_MS: '10' }));
  });
  after(stopAll);

  test('openai and anthropic: chat, streams, tools, errors, models, embeddings, responses, every mode alias', () => {
    const run = spawnSync(python(), [join(root, 'tests/e2e/python/sdk_checks.py')], {
      env: { ...process.env, OPENCODE_BASE: base, OPENCODE_TOKEN: token({ role: 'admin' }) },
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /^ok$/m);
  });
});
