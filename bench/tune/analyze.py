#!/usr/bin/env python3
"""Figures for one measured run of bench/tune_vs_pgtune.sh.

    analyze.py run RUNDIR WARMUP_S WINDOW_S   -> one JSON object on stdout
    analyze.py report RESULTS_DIR             -> markdown table on stdout

RUNDIR holds:
  samples.tsv     epoch, wal_lsn, checkpoints (timed+req), xact_commit(bench),
                  redo_lsn, checkpoint_time (epoch s), wal_fpi, wal_records;
                  one line every ~5 s, the first taken right after the
                  opening CHECKPOINT, before pgbench starts
  pgbench_log.*   pgbench -l per-transaction logs (every transaction)
  server.log      PostgreSQL log (log_line_prefix '%m ', log_checkpoints=on)
Only the standard library is used.
"""

import glob
import json
import os
import re
import statistics
import sys
from datetime import datetime


def read_samples(path):
    rows = []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) != 8:
                continue
            rows.append(
                {
                    "t": float(p[0]),
                    "lsn": int(float(p[1])),
                    "ckpts": int(p[2]),
                    "xact": int(p[3]),
                    "redo": int(float(p[4])),
                    "ckpt_time": float(p[5]),
                    "fpi": int(p[6]),
                    "records": int(p[7]),
                }
            )
    return rows


def read_transactions(rundir):
    """(completion epoch, latency ms) of every transaction, sorted by time."""
    out = []
    for path in glob.glob(os.path.join(rundir, "pgbench_log.*")):
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) < 6:
                    continue
                out.append((int(p[4]) + int(p[5]) / 1e6, int(p[2]) / 1000.0))
    out.sort()
    return out


CKPT_START = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) (\S+) .*checkpoint starting"
)


def checkpoint_starts_from_log(path):
    """Epoch times (ms precision) of every 'checkpoint starting' line."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            m = CKPT_START.match(line)
            if not m:
                continue
            ts, tz = m.group(1), m.group(2)
            if tz != "UTC":
                continue
            dt = datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%f")
            out.append((dt - datetime(1970, 1, 1)).total_seconds())
    return out


def count_between(times, a, b):
    """Transactions completed in [a, b)."""
    import bisect

    return bisect.bisect_left(times, b) - bisect.bisect_left(times, a)


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q * len(sorted_vals))) - 1))
    return sorted_vals[i]


def analyze_run(rundir, warmup, window):
    samples = read_samples(os.path.join(rundir, "samples.tsv"))
    txns = read_transactions(rundir)
    if len(samples) < 3 or not txns:
        return {"error": "no samples or no transactions"}
    times = [t for t, _ in txns]
    first, last = times[0], times[-1]

    # Measured window: sample to sample, so WAL positions are exact.
    s0 = next((s for s in samples if s["t"] >= first + warmup), None)
    inside = [s for s in samples if s0 and s0["t"] < s["t"] <= min(last, s0["t"] + window + 2.5)]
    res = {}
    if s0 and inside:
        s1 = inside[-1]
        n = count_between(times, s0["t"], s1["t"])
        secs = s1["t"] - s0["t"]
        lat = sorted(l for t, l in txns if s0["t"] <= t < s1["t"])
        res.update(
            window_s=round(secs, 1),
            txns=n,
            tps=round(n / secs, 1) if secs else None,
            p95_ms=round(pct(lat, 0.95), 2) if lat else None,
            wal_per_txn=round((s1["lsn"] - s0["lsn"]) / n, 1) if n else None,
            ckpts_in_window=s1["ckpts"] - s0["ckpts"],
            fpi_per_txn=round((s1["fpi"] - s0["fpi"]) / n, 3) if n else None,
            fpi_share=round((s1["fpi"] - s0["fpi"]) / max(1, s1["records"] - s0["records"]), 4),
        )

    # Checkpoints: each distinct (redo LSN, checkpoint time) in pg_control is
    # one completed checkpoint; its start time to the millisecond comes from
    # the server log when a 'checkpoint starting' line falls in that second.
    starts_log = checkpoint_starts_from_log(os.path.join(rundir, "server.log"))
    ckpts = []
    for s in samples:
        key = (s["redo"], s["ckpt_time"])
        if not ckpts or ckpts[-1] != key:
            if key not in ckpts:
                ckpts.append(key)
    ckpt_list = []
    for redo, ct in ckpts:
        t = next((x for x in starts_log if int(x) == int(ct)), ct)
        ckpt_list.append((redo, t))
    # The opening CHECKPOINT is the first; cycles are between successive ones.
    cycles = []
    for (r0, t0), (r1, t1) in zip(ckpt_list, ckpt_list[1:]):
        n = count_between(times, t0, t1)
        if n:
            cycles.append({"wal": r1 - r0, "txns": n, "secs": round(t1 - t0, 1),
                           "bpt": round((r1 - r0) / n, 1)})
    res["cycles"] = cycles
    if cycles:
        tot_wal = sum(c["wal"] for c in cycles)
        tot_n = sum(c["txns"] for c in cycles)
        res["cycle_wal_per_txn"] = round(tot_wal / tot_n, 1)
        res["cycle_secs_median"] = statistics.median(c["secs"] for c in cycles)
    # From the opening checkpoint to the end of the run: every config starts
    # from the same state (fresh data, a checkpoint) and runs the same time,
    # so this counts the full-page-image burst after a checkpoint once,
    # whether or not another checkpoint came.
    open_redo, open_t = ckpt_list[0]
    end = samples[-1]
    n_all = count_between(times, open_t, end["t"] + 1e-6)
    res["run_wal_per_txn"] = round((end["lsn"] - open_redo) / n_all, 1) if n_all else None
    res["run_secs"] = round(end["t"] - open_t, 1)
    res["ckpts_in_run"] = len(ckpt_list) - 1
    return res


def fmt(v, nd=0):
    if v is None:
        return "–"
    if isinstance(v, float) and nd == 0:
        return f"{v:.0f}"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def mmm(vals, nd=0):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    if len(vals) == 1:
        return fmt(float(vals[0]), nd)
    return f"{fmt(float(min(vals)), nd)} / {fmt(float(statistics.median(vals)), nd)} / {fmt(float(max(vals)), nd)}"


def report(results_dir):
    runs = []
    with open(os.path.join(results_dir, "runs.tsv")) as f:
        for line in f:
            label, config, rundir, changed, restarts, settings = line.rstrip("\n").split("\t")
            with open(os.path.join(rundir, "result.json")) as g:
                r = json.load(g)
            runs.append((label, config, r, changed, restarts, settings))
    base = [r["run_wal_per_txn"] for _, c, r, *_ in runs if c == "defaults" and r.get("run_wal_per_txn")]
    base_tps = [r["tps"] for _, c, r, *_ in runs if c == "defaults" and r.get("tps")]
    b = statistics.median(base) if base else None
    bt = statistics.median(base_tps) if base_tps else None
    print("| run | config | WAL B/txn, from the opening checkpoint over the whole run | vs defaults (median) | WAL B/txn, measured window | whole checkpoint cycles: n, B/txn | checkpoints in window (pg_stat_bgwriter) / completed in run after the opening one | FPI/txn in window | TPS in window (vs defaults median) | p95 ms | settings changed | restarts needed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, config, r, changed, restarts, settings in runs:
        if "error" in r:
            print(f"| {label} | {config} | error: {r['error']} | | | | | | | | {changed} | {restarts} |")
            continue
        cyc = r.get("cycles") or []
        cyc_s = f"{len(cyc)}, {fmt(r.get('cycle_wal_per_txn'))}" if cyc else "0 (none complete)"
        ratio = f"{r['run_wal_per_txn'] / b:.2f}" if b and r.get("run_wal_per_txn") else "–"
        tps_ratio = f" ({r['tps'] / bt:.2f})" if bt and r.get("tps") else ""
        print(
            f"| {label} | {config} | {fmt(r.get('run_wal_per_txn'))} | {ratio} | {fmt(r.get('wal_per_txn'))} | {cyc_s} | "
            f"{r.get('ckpts_in_window', '–')} / {r.get('ckpts_in_run', '–')} | {fmt(r.get('fpi_per_txn'), 3)} | "
            f"{fmt(r.get('tps'))}{tps_ratio} | {fmt(r.get('p95_ms'), 2)} | {changed}: {settings or 'none'} | {restarts} |"
        )
    print()
    by = {}
    for _, config, r, *_ in runs:
        by.setdefault(config, []).append(r)
    print("Per configuration, min / median / max where it ran more than once:")
    print()
    print("| config | runs | WAL B/txn over the run | WAL B/txn in window | TPS | p95 ms |")
    print("|---|---|---|---|---|---|")
    for config, rs in by.items():
        print(
            f"| {config} | {len(rs)} | {mmm([r.get('run_wal_per_txn') for r in rs])} | "
            f"{mmm([r.get('wal_per_txn') for r in rs])} | {mmm([r.get('tps') for r in rs])} | "
            f"{mmm([r.get('p95_ms') for r in rs], 2)} |"
        )
    pair_ratios(runs)


def pair_ratios(runs):
    """Each tuner run against the PGTune run nearest after it in the plan.

    The machine is shared and noisy, so a ratio of two neighbouring runs says
    more than either absolute figure; repeats give min / median / max.
    """
    pairs = []
    for i, (_, config, r, *_) in enumerate(runs):
        if config != "tuner" or "error" in r:
            continue
        peer = next((p for _, c, p, *_ in runs[i + 1:] if c == "pgtune" and "error" not in p), None)
        if peer is None:
            peer = next((p for _, c, p, *_ in reversed(runs[:i]) if c == "pgtune" and "error" not in p), None)
        if peer is not None:
            pairs.append((r, peer))
    if not pairs:
        return

    def ratio(r, p, key):
        return r[key] / p[key] if r.get(key) and p.get(key) else None

    keys = [("run_wal_per_txn", "WAL B/txn over the run"), ("wal_per_txn", "WAL B/txn in window"),
            ("cycle_wal_per_txn", "WAL B/txn, whole cycles"), ("tps", "TPS"), ("p95_ms", "p95 ms")]
    print()
    print("tuner / PGTune, each tuner run against its neighbouring PGTune run (below 1.00: tuner lower):")
    print()
    print("| pair | " + " | ".join(label for _, label in keys) + " |")
    print("|---|" + "---|" * len(keys))
    cols = {k: [] for k, _ in keys}
    for n, (r, p) in enumerate(pairs, 1):
        cells = []
        for k, _ in keys:
            v = ratio(r, p, k)
            cols[k].append(v)
            cells.append(fmt(v, 2))
        print(f"| {n} | " + " | ".join(cells) + " |")
    if len(pairs) > 1:
        print("| min / median / max | " + " | ".join(mmm(cols[k], 2) for k, _ in keys) + " |")


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "run":
        print(json.dumps(analyze_run(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))))
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
