// Self-test of parsePrometheus (./prometheus.mjs), without the platform (it runs the same whatever
// E2E_RUNTIME says): prometheus_client's reference parser, in the suite's Python environment,
// reads a labelled counter and a histogram, and refuses malformed text.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheus } from './prometheus.mjs';

const exposition = String.raw`# HELP opencode_requests_total Requests served, by function and status.
# TYPE opencode_requests_total counter
opencode_requests_total{function="chat",status="200"} 41
opencode_requests_total{function="chat",status="500",path="a\"b\\c\nd"} 1
# HELP opencode_request_duration_seconds Time to the response's end.
# TYPE opencode_request_duration_seconds histogram
opencode_request_duration_seconds_bucket{function="chat",le="0.1"} 2
opencode_request_duration_seconds_bucket{function="chat",le="0.5"} 5
opencode_request_duration_seconds_bucket{function="chat",le="+Inf"} 6
opencode_request_duration_seconds_sum{function="chat"} 1.75
opencode_request_duration_seconds_count{function="chat"} 6
# TYPE opencode_up gauge
opencode_up NaN
`;

describe('parsePrometheus (prometheus_client)', () => {
  test('a counter with labels, a histogram with buckets, sum and count, a NaN gauge', async () => {
    const families = await parsePrometheus(exposition);
    assert.deepEqual(families, [
      {
        name: 'opencode_requests',
        type: 'counter',
        documentation: 'Requests served, by function and status.',
        samples: [
          { name: 'opencode_requests_total', labels: { function: 'chat', status: '200' }, value: 41 },
          { name: 'opencode_requests_total', labels: { function: 'chat', status: '500', path: 'a"b\\c\nd' }, value: 1 },
        ],
      },
      {
        name: 'opencode_request_duration_seconds',
        type: 'histogram',
        documentation: "Time to the response's end.",
        samples: [
          { name: 'opencode_request_duration_seconds_bucket', labels: { function: 'chat', le: '0.1' }, value: 2 },
          { name: 'opencode_request_duration_seconds_bucket', labels: { function: 'chat', le: '0.5' }, value: 5 },
          { name: 'opencode_request_duration_seconds_bucket', labels: { function: 'chat', le: '+Inf' }, value: 6 },
          { name: 'opencode_request_duration_seconds_sum', labels: { function: 'chat' }, value: 1.75 },
          { name: 'opencode_request_duration_seconds_count', labels: { function: 'chat' }, value: 6 },
        ],
      },
      {
        name: 'opencode_up',
        type: 'gauge',
        documentation: '',
        samples: [{ name: 'opencode_up', labels: {}, value: Number.NaN }],
      },
    ]);
  });

  test('malformed text is refused with the parser\'s error', async () => {
    await assert.rejects(
      parsePrometheus('opencode_requests_total{function="chat" 1\n'),
      /prometheus_client refused the exposition text \(exit 1\):[\s\S]*ValueError/,
    );
    await assert.rejects(
      parsePrometheus('# TYPE opencode_up sometimes\nopencode_up 1\n'),
      /Invalid metric type: sometimes/,
    );
  });
});
