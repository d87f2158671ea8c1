"""ipyparallel 7.1 peer for bench/run.ts (protocol: bench_common.py).

usage: /usr/bin/python3 bench/peers/ipp_bench.py L1,L2,L3,T1,T2,D1,D2,C1,S1,M1 [--serve 1]
       [--calls 200] [--warmup 20] [--n 500] [--reps 1] [--c1-tasks 200] [--c1-ms 2.5] [--reap-grace 6]

One cluster (controller + 2 engines on 127.0.0.1) serves every request. S1 is the time its start
took; M1 the idle cluster's RSS just after it: the controller and its forked children, the engines
and their nannies (every descendant of this process, the client excluded).
"""
import statistics
import sys
import time

import numpy as np

from bench_common import (MB, calibrate_sum, descendant_pids, drive, reap, serial_reference,
                          time_calls)


def noop(x):
    return x


def cpu(n):
    return sum(range(n))


def start_cluster():
    import ipyparallel as ipp
    t0 = time.perf_counter()
    cluster = ipp.Cluster(n=2, controller_ip="127.0.0.1", log_level=40)
    rc = cluster.start_and_connect_sync()
    rc.wait_for_engines(2, timeout=60)
    return cluster, rc, time.perf_counter() - t0


def case_l1(rc, o):
    view = rc[0]
    return time_calls(lambda: view.apply_sync(noop, 1), int(o.get("calls", 200)), int(o.get("warmup", 20)))


def case_l2(rc, o):
    view = rc[:]
    return time_calls(lambda: view.apply_sync(noop, 1), int(o.get("calls", 200)), int(o.get("warmup", 20)))


def case_l3(rc, o):
    lview = rc.load_balanced_view()
    return time_calls(lambda: lview.apply_sync(noop, 1), int(o.get("calls", 200)), int(o.get("warmup", 20)))


def case_t1(rc, o):
    n = int(o.get("n", 500))
    lview = rc.load_balanced_view()
    lview.map_async(noop, range(50), chunksize=1).get()  # warm-up
    t0 = time.perf_counter()
    lview.map_async(noop, range(n), chunksize=1).get()
    return {"tasks_per_s": n / (time.perf_counter() - t0), "n": n}


def case_t2(rc, o):
    n = int(o.get("n", 500))
    lview = rc.load_balanced_view()
    t0 = time.perf_counter()
    ars = [lview.apply_async(noop, i) for i in range(n)]
    for ar in ars:
        ar.get()
    return {"tasks_per_s": n / (time.perf_counter() - t0), "n": n}


def case_d1(rc, o):
    arr = np.random.random(int(100 * MB / 8))
    view = rc[0]
    push, pull = [], []
    for _ in range(int(o.get("reps", 1))):
        t0 = time.perf_counter()
        view.push({"a": arr}, block=True)
        t1 = time.perf_counter()
        back = view.pull("a", block=True)
        t2 = time.perf_counter()
        assert back.shape == arr.shape
        push.append(arr.nbytes / MB / (t1 - t0))
        pull.append(arr.nbytes / MB / (t2 - t1))
        view.execute("del a", block=True)
    return {"push_MBps": statistics.median(push), "pull_MBps": statistics.median(pull), "MB": arr.nbytes / MB}


def case_d2(rc, o):
    arr = np.random.random(10_000_000)
    dv = rc[:]
    runs = []
    for _ in range(int(o.get("reps", 1))):
        t0 = time.perf_counter()
        dv.scatter("x", arr, block=True)
        t1 = time.perf_counter()
        back = dv.gather("x", block=True)
        t2 = time.perf_counter()
        assert len(back) == len(arr)
        runs.append((t2 - t0, t1 - t0, t2 - t1))
    runs.sort()
    total, sc, ga = runs[len(runs) // 2]
    return {"seconds": total, "scatter_s": sc, "gather_s": ga}


def case_c1(rc, o):
    tasks, ms = int(o.get("c1_tasks", 200)), o.get("c1_ms", 2.5)
    n = calibrate_sum(ms)
    lview = rc.load_balanced_view()
    before = serial_reference(n, tasks)
    t0 = time.perf_counter()
    ar = lview.map_async(cpu, [n] * tasks, chunksize=1)
    ar.get()
    wall = time.perf_counter() - t0
    after = serial_reference(n, tasks)
    serial = (before + after) / 2
    return {"serial_over_wall": ar.serial_time / ar.wall_time, "local_serial_over_wall": serial / wall,
            "wall_s": wall, "local_serial_s": serial, "n": n, "tasks": tasks}


def start(o):
    cluster, rc, start_s = start_cluster()
    return (cluster, rc), start_s, descendant_pids()


def cases_table(state, o):
    _, rc = state
    return {"L1": lambda: case_l1(rc, o), "L2": lambda: case_l2(rc, o), "L3": lambda: case_l3(rc, o), "T1": lambda: case_t1(rc, o),
            "T2": lambda: case_t2(rc, o), "D1": lambda: case_d1(rc, o), "D2": lambda: case_d2(rc, o),
            "C1": lambda: case_c1(rc, o)}


def stop(state, pids, o):
    cluster, rc = state
    t0 = time.perf_counter()
    rc.close()
    cluster.stop_cluster_sync()
    # the nannies exit ~3.5 s after stop on their own (LINGER); wait for them, then kill stragglers
    killed = reap(pids, o.get("reap_grace", 6))
    print(f"ipp stop {time.perf_counter() - t0:.2f}s, killed {killed}", file=sys.stderr)


if __name__ == "__main__":
    drive("ipyparallel", start, cases_table, stop)
