"""Helpers shared by the Python peers (ipp_bench.py, dask_bench.py).

Protocol with bench/run.ts: argv is `CASES [--key value ...]` (CASES: comma-separated case names).
A peer starts its cluster once and prints one JSON line {"peer", "results": {case: {...}},
"errors": {case: msg}} with S1/M1 (if asked); then it runs CASES and prints a line for them. With
`--serve 1` it instead reads one CASES line per request from stdin and answers each with a line,
until stdin closes; then it stops the cluster. stderr lines starting with "BENCH_PIDS " list pids
the orchestrator may kill if we hang.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import traceback

import psutil

MB = 1e6


def parse_args(argv):
    """`L1,T1 --calls 200 --n 500` -> (["L1", "T1"], {"calls": 200, "n": 500})."""
    cases = [c for c in argv[0].split(",") if c] if argv else []
    opts = {}
    rest = argv[1:]
    for i in range(0, len(rest) - 1, 2):
        opts[rest[i].lstrip("-").replace("-", "_")] = float(rest[i + 1])
    return cases, opts


def quantile(sorted_xs, q):
    if not sorted_xs:
        return float("nan")
    i = min(len(sorted_xs) - 1, max(0, int(round(q * (len(sorted_xs) - 1)))))
    return sorted_xs[i]


def latency_stats(samples_s):
    xs = sorted(s * 1e6 for s in samples_s)
    return {"median_us": statistics.median(xs), "p90_us": quantile(xs, 0.9),
            "p99_us": quantile(xs, 0.99), "calls": len(xs)}


def time_calls(fn, calls, warmup):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return latency_stats(samples)


def calibrate_sum(target_ms):
    """n such that sum(range(n)) takes about target_ms here and now."""
    n0 = 200_000
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        sum(range(n0))
        times.append(time.perf_counter() - t0)
    return max(1000, int(n0 * (target_ms / 1000) / statistics.median(times)))


SERIAL_CODE = (
    "import sys, time\n"
    "n, k = int(sys.argv[1]), int(sys.argv[2])\n"
    "t0 = time.perf_counter()\n"
    "for _ in range(k): sum(range(n))\n"
    "print(time.perf_counter() - t0)\n"
)


def serial_reference(n, count, timeout=60):
    """Seconds to run `count` x sum(range(n)) serially in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", SERIAL_CODE, str(n), str(count)],
                         capture_output=True, text=True, timeout=timeout, check=True)
    return float(out.stdout.strip())


def rss_mb(pids):
    """Sum of VmRSS (MB) over the pids that still exist."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total / MB


def descendant_pids():
    return [p.pid for p in psutil.Process().children(recursive=True)]


def report_pids(pids):
    print("BENCH_PIDS " + json.dumps(sorted(set(pids))), file=sys.stderr, flush=True)


def reap(pids, grace_s):
    """Wait up to grace_s for pids to exit on their own, then SIGKILL what is left."""
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=2)
    return len(alive)


def run_cases(cases, table, results, errors):
    """Run each selected case from table {name: fn}, keeping going after a failure."""
    for case in cases:
        fn = table.get(case)
        if fn is None:
            continue
        t0 = time.perf_counter()
        try:
            results[case] = fn()
            results[case]["elapsed_s"] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - a failing case is reported, not fatal
            errors[case] = f"{type(e).__name__}: {e}"
            traceback.print_exc(file=sys.stderr)


def emit(peer, results, errors, extra=None):
    out = {"peer": peer, "results": results, "errors": errors}
    out.update(extra or {})
    print(json.dumps(out), flush=True)


def private_stdio():
    """Keep stdin/stdout for the orchestrator: library chatter and child processes get stderr and
    /dev/null instead of our JSON channel. Returns the command reader."""
    saved_out, saved_in = os.dup(1), os.dup(0)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = open(saved_out, "w", buffering=1)
    return open(saved_in, "r")


def drive(peer, start, cases_table, stop):
    """The peer's life: start(opts) -> (state, start_s, pids); cases_table(state, opts) -> {case: fn};
    stop(state, pids, opts). See the module docstring for the protocol."""
    commands = private_stdio()
    cases, o = parse_args(sys.argv[1:])
    try:
        state, start_s, pids = start(o)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        emit(peer, {}, {c: f"cluster start failed: {type(e).__name__}: {e}" for c in cases})
        reap(descendant_pids(), 1)
        return
    report_pids(pids)
    first = {}
    if "S1" in cases:
        first["S1"] = {"seconds": start_s}
    if "M1" in cases:
        time.sleep(0.5)
        first["M1"] = {"rss_MB": rss_mb(pids), "processes": len(pids)}
    emit(peer, first, {}, {"ready": True})
    table = cases_table(state, o)
    requests = (line.strip().split(",") for line in commands) if o.get("serve") else [cases]
    for request in requests:
        results, errors = {}, {}
        run_cases(request, table, results, errors)
        emit(peer, results, errors)
    stop(state, pids, o)
