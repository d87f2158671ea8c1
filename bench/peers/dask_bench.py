"""dask.distributed peer for bench/run.ts (protocol: bench_common.py).

usage: /usr/bin/python3 bench/peers/dask_bench.py L1,L2,T1,T2,D1,D2,C1,S1,M1 [--serve 1]
       [--calls 100] [--warmup 10] [--n 1000] [--reps 1] [--c1-tasks 200] [--c1-ms 2.5]

LocalCluster(n_workers=2, threads_per_worker=1, processes=True) on 127.0.0.1. The scheduler runs
inside this process, so M1 counts only the worker processes (and their helpers).
L2 ("apply on every engine") is one submit per worker, pinned with workers=[w], then gather.
"""
import logging
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
    import dask
    from dask.distributed import Client, LocalCluster
    # bench/run.ts freezes this whole process group while other peers run; the worker TTL (failure
    # detection only) must not count that time
    dask.config.set({"distributed.scheduler.worker-ttl": None})
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    client = Client(cluster)
    client.wait_for_workers(2, timeout=60)
    return cluster, client, time.perf_counter() - t0


def case_l1(client, o):
    def once():
        return client.submit(noop, 1, pure=False).result()
    return time_calls(once, int(o.get("calls", 100)), int(o.get("warmup", 10)))


def case_l2(client, o):
    workers = list(client.scheduler_info()["workers"])

    def once():
        return client.gather([client.submit(noop, 1, pure=False, workers=[w]) for w in workers])
    return time_calls(once, int(o.get("calls", 100)), int(o.get("warmup", 10)))


def case_t1(client, o):
    n = int(o.get("n", 1000))
    client.gather(client.map(noop, range(50), pure=False))  # warm-up
    t0 = time.perf_counter()
    client.gather(client.map(noop, range(n), pure=False))
    return {"tasks_per_s": n / (time.perf_counter() - t0), "n": n}


def case_t2(client, o):
    n = int(o.get("n", 1000))
    t0 = time.perf_counter()
    futures = [client.submit(noop, i, pure=False) for i in range(n)]
    client.gather(futures)
    return {"tasks_per_s": n / (time.perf_counter() - t0), "n": n}


def case_d1(client, o):
    arr = np.random.random(int(100 * MB / 8))
    worker = list(client.scheduler_info()["workers"])[0]
    push, pull = [], []
    for _ in range(int(o.get("reps", 1))):
        t0 = time.perf_counter()
        fut = client.scatter(arr, workers=[worker])
        t1 = time.perf_counter()
        back = fut.result()
        t2 = time.perf_counter()
        assert back.shape == arr.shape
        push.append(arr.nbytes / MB / (t1 - t0))
        pull.append(arr.nbytes / MB / (t2 - t1))
        fut.release()
        del fut, back
    return {"push_MBps": statistics.median(push), "pull_MBps": statistics.median(pull), "MB": arr.nbytes / MB}


def case_d2(client, o):
    arr = np.random.random(10_000_000)
    workers = list(client.scheduler_info()["workers"])
    runs = []
    for _ in range(int(o.get("reps", 1))):
        t0 = time.perf_counter()
        parts = np.array_split(arr, len(workers))
        futs = [client.scatter(p, workers=[w]) for p, w in zip(parts, workers)]
        t1 = time.perf_counter()
        back = np.concatenate(client.gather(futs))
        t2 = time.perf_counter()
        assert len(back) == len(arr)
        runs.append((t2 - t0, t1 - t0, t2 - t1))
        del futs
    runs.sort()
    total, sc, ga = runs[len(runs) // 2]
    return {"seconds": total, "scatter_s": sc, "gather_s": ga}


def case_c1(client, o):
    tasks, ms = int(o.get("c1_tasks", 200)), o.get("c1_ms", 2.5)
    n = calibrate_sum(ms)
    before = serial_reference(n, tasks)
    t0 = time.perf_counter()
    client.gather(client.map(cpu, [n] * tasks, pure=False))
    wall = time.perf_counter() - t0
    after = serial_reference(n, tasks)
    serial = (before + after) / 2
    return {"local_serial_over_wall": serial / wall, "wall_s": wall, "local_serial_s": serial,
            "n": n, "tasks": tasks}


def start(o):
    cluster, client, start_s = start_cluster()
    return (cluster, client), start_s, descendant_pids()


def cases_table(state, o):
    _, client = state
    return {"L1": lambda: case_l1(client, o), "L2": lambda: case_l2(client, o),
            "T1": lambda: case_t1(client, o), "T2": lambda: case_t2(client, o),
            "D1": lambda: case_d1(client, o), "D2": lambda: case_d2(client, o),
            "C1": lambda: case_c1(client, o)}


def stop(state, pids, o):
    cluster, client = state
    client.close(timeout=10)
    cluster.close(timeout=10)
    reap([p for p in pids if p in set(descendant_pids())], 3)


if __name__ == "__main__":
    drive("dask", start, cases_table, stop)
