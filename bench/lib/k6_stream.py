#!/usr/bin/env python3
"""Writes a k6 `--out json` stream of about SIZE_MB megabytes to stdout.

The shape follows k6's documented JSON output: a `Metric` line when a metric
gets its first sample, then one `Point` line per sample, with the tags k6
puts on HTTP metrics. Each request adds the samples k6 emits for one
HTTP GET in an iteration; durations are log-normal (median ~40 ms), one
request in 50 fails. Seeded, so every run writes the same file.

    bench/lib/k6_stream.py SIZE_MB > stream.json
"""
import random
import sys

size = int(sys.argv[1]) * 1_000_000
rng = random.Random(1)
out = sys.stdout
tags = ('{"expected_response":"true","group":"","method":"GET",'
        '"name":"http://127.0.0.1:8080/api","proto":"HTTP/1.1","scenario":"default",'
        '"status":"200","tls_version":"","url":"http://127.0.0.1:8080/api"}')
failed_tags = tags.replace('"true"', '"false"').replace('"200"', '"500"')
iter_tags = '{"group":"","scenario":"default"}'
metrics = [
    ("http_reqs", "counter", "default"), ("http_req_duration", "trend", "time"),
    ("http_req_blocked", "trend", "time"), ("http_req_connecting", "trend", "time"),
    ("http_req_tls_handshaking", "trend", "time"), ("http_req_sending", "trend", "time"),
    ("http_req_waiting", "trend", "time"), ("http_req_receiving", "trend", "time"),
    ("http_req_failed", "rate", "default"), ("data_sent", "counter", "data"),
    ("data_received", "counter", "data"), ("iteration_duration", "trend", "time"),
    ("iterations", "counter", "default"),
]
declared = set()
written = 0
second, micros = 1_709_294_400, 0
chunk = []
while written < size:
    micros += rng.randint(200, 2000)
    if micros >= 1_000_000:
        second, micros = second + micros // 1_000_000, micros % 1_000_000
    hh, mm, ss = (second // 3600) % 24, (second // 60) % 60, second % 60
    time = f"2024-03-01T{hh:02}:{mm:02}:{ss:02}.{micros:06}+01:00"
    fail = rng.random() < 0.02
    duration = rng.lognormvariate(3.7, 0.6)
    values = [1, duration, rng.random() * 0.05, 0, 0, 0.02, duration * 0.97, 0.1,
              1 if fail else 0, 180, 1200, duration + 1.5, 1]
    t = failed_tags if fail else tags
    for (name, kind, contains), value in zip(metrics, values):
        if name not in declared:
            declared.add(name)
            chunk.append(f'{{"type":"Metric","data":{{"name":"{name}","type":"{kind}",'
                         f'"contains":"{contains}","thresholds":[],"submetrics":null}},'
                         f'"metric":"{name}"}}\n')
        mt = iter_tags if name.startswith("iteration") else t
        chunk.append(f'{{"type":"Point","data":{{"time":"{time}","value":{value},'
                     f'"tags":{mt}}},"metric":"{name}"}}\n')
    if len(chunk) > 4000:
        text = "".join(chunk)
        written += len(text)
        out.write(text)
        chunk = []
text = "".join(chunk)
out.write(text)
