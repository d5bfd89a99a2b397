#!/usr/bin/env python3
"""Reference percentiles of a k6 `--out json` stream: every
`http_req_duration` point's value, sorted, linearly interpolated at rank
p*(n-1) (numpy's default and k6's own). Prints `p95 p99 n`.

    bench/lib/k6_percentile.py stream.json
"""
import json
import sys

values = []
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        if '"http_req_duration"' not in line:
            continue
        doc = json.loads(line)
        if doc["type"] == "Point":
            values.append(doc["data"]["value"])
values.sort()


def percentile(p):
    rank = p / 100 * (len(values) - 1)
    lo, hi = int(rank), min(int(rank) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (rank - lo)


print(f"{percentile(95):.6f} {percentile(99):.6f} {len(values)}")
