"""Parses Prometheus exposition text with the reference parser, prometheus_client's.

Reads the text on stdin and prints its metric families as JSON:

    [{"name", "type", "documentation", "samples": [{"name", "labels", "value"}]}]

as `prometheus_client.parser.text_string_to_metric_families` (or, with --openmetrics,
`prometheus_client.openmetrics.parser.text_string_to_metric_families`) yields them. That parser's
own conventions show through: a counter family is named without its `_total` suffix (its samples
keep it), a family with no TYPE (or TYPE untyped) has type "unknown", and a sample whose name
does not belong to the family before it starts an untyped family of its own. A value that JSON
cannot hold is the string "NaN", "+Inf" or "-Inf"; a sample with a timestamp also has "timestamp"
(seconds, as the parser gives it). On a parse error: the error on stderr and exit status 1.

Run by tests/e2e/suite/prometheus.mjs (parsePrometheus) with the end-to-end Python environment.
"""

import json
import math
import sys
import traceback

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families


def value(x):
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    if isinstance(x, float) and math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return x


def sample(s):
    out = {"name": s.name, "labels": dict(s.labels), "value": value(s.value)}
    if s.timestamp is not None:
        out["timestamp"] = float(s.timestamp)
    return out


def main():
    text = sys.stdin.read()
    parse = openmetrics_families if "--openmetrics" in sys.argv[1:] else text_string_to_metric_families
    try:
        families = [
            {
                "name": family.name,
                "type": family.type,
                "documentation": family.documentation,
                "samples": [sample(s) for s in family.samples],
            }
            for family in parse(text)
        ]
    except Exception as error:  # noqa: BLE001 - any parser failure is a rejection
        print(f"prom_parse: the text does not parse: {type(error).__name__}: {error}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return 1
    json.dump(families, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
