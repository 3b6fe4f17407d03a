// The end-to-end suite's Python: a virtual environment in the build cache (target/e2e-python)
// holding the packages tests/e2e/python/requirements.txt pins with hashes, made again when that
// file changes. Shared by the tests that run Python (python-sdks.test.mjs, prometheus.mjs); a lock
// beside it keeps two test files that node --test runs at once from building it together.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { root, target } from './harness.mjs';

export const requirements = join(root, 'tests/e2e/python/requirements.txt');

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Runs `fn` holding the directory lock `lock` (a stale one, older than 15 minutes, is broken). */
function withLock(lock, fn) {
  mkdirSync(dirname(lock), { recursive: true });
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 15 * 60_000) rmSync(lock, { recursive: true, force: true });
      } catch { /* released meanwhile */ }
      if (Date.now() > deadline) throw new Error(`${lock} is still held after 20 minutes`);
      sleep(250);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** The virtual environment's python, made (or remade) to match the lockfile. */
export function python() {
  const venv = join(target, 'e2e-python');
  const stamp = join(venv, '.requirements-sha256');
  const want = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  const bin = join(venv, 'bin', 'python');
  const current = () => existsSync(stamp) && readFileSync(stamp, 'utf8') === want;
  if (!current()) {
    withLock(`${venv}.lock`, () => {
      if (current()) return; // made by another test file while this one waited
      execFileSync('python3', ['-m', 'venv', '--clear', venv], { stdio: 'inherit' });
      execFileSync(bin, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--require-hashes', '--no-deps', '-r', requirements], { stdio: 'inherit' });
      writeFileSync(stamp, want);
    });
  }
  return bin;
}
