// Prometheus exposition text parsed by the reference parser, prometheus_client's (Python), through
// tests/e2e/python/prom_parse.py in the suite's Python environment (./python.mjs).
//
//   const families = await parsePrometheus(await (await fetch(`${base}/metrics`)).text());
//   // [{ name, type, documentation, samples: [{ name, labels, value }] }]
//
// As that parser gives them: a counter family's name lacks `_total` (its samples' names keep it);
// a family without TYPE (or `untyped`) has type 'unknown'; a histogram's samples are its
// `_bucket` (labels with `le`, '+Inf' last), `_sum` and `_count` in the text's order; a sample
// whose name does not fit the family before it becomes an 'unknown' family of its own. `value`
// is a number (NaN and ±Infinity included); a sample that carried a timestamp also has
// `timestamp` (seconds). Text the parser refuses rejects the promise with its error.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { root } from './harness.mjs';
import { python } from './python.mjs';

const script = join(root, 'tests/e2e/python/prom_parse.py');
const special = { NaN: Number.NaN, '+Inf': Number.POSITIVE_INFINITY, '-Inf': Number.NEGATIVE_INFINITY };

/**
 * Parses `text` (the Prometheus text format; OpenMetrics with `{ openMetrics: true }`) and resolves
 * to its metric families.
 */
export async function parsePrometheus(text, { openMetrics = false } = {}) {
  const bin = python();
  const { code, stdout, stderr } = await new Promise((resolve, reject) => {
    const child = spawn(bin, [script, ...(openMetrics ? ['--openmetrics'] : [])], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', reject);
    child.on('close', (status) => resolve({
      code: status, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'),
    }));
    child.stdin.on('error', () => { /* the exit status tells */ });
    child.stdin.end(text);
  });
  if (code !== 0) {
    throw new Error(`prometheus_client refused the exposition text (exit ${code}):\n${stderr.trim()}\n--- the text ---\n${text}`);
  }
  const families = JSON.parse(stdout);
  for (const family of families) {
    for (const sample of family.samples) {
      if (typeof sample.value === 'string' && sample.value in special) sample.value = special[sample.value];
    }
  }
  return families;
}
