#!/usr/bin/env python3
"""Scale-out benchmark for llm-orchestrate (issue 9): throughput of 1, 2 and 4
workers on 2,000 short shell agents (`true`), coordinated through PostgreSQL.

For each worker count N (interleaved, --runs times): a fresh database on the
server of --store-url, N `worker` processes (each --capacity C), and a
coordinator `run --store … --workers-only --concurrency 2000`. The wall time is
the coordinator's, from start to exit (workers are started and connected
first). Throughput = agents / median wall time; the ratios are against one
worker.

Usage:
    python3 bench/workers_bench.py --store-url postgres://USER:PW@127.0.0.1:PORT/postgres \
        [--agents 2000] [--workers 1,2,4] [--capacity 4] [--runs 3] [--binary PATH] [--json]

The store URL defaults to $LLMO_TEST_PG_URL; its role must be allowed to
create databases. Exit code 0 when every run succeeded with each agent run
once, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path


def psql(url: str, sql: str) -> None:
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    subprocess.run(["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                   check=True, stdout=subprocess.DEVNULL, env=env)


def database_url(base: str, name: str) -> str:
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def write_plan(path: Path, agents: int, ledger: Path) -> None:
    script = f'echo "$LLMO_AGENT_ID" >> {ledger}'
    plan = {
        "orchestrationId": "bench-workers",
        "executionMode": "waves",
        "waves": [{
            "waveId": "w1",
            "agents": [{
                "agentId": f"a{i:05}",
                "workDescription": "true",
                "estimatedDuration": "1m",
                "dependencies": [],
                "command": ["sh", "-c", script],
            } for i in range(agents)],
        }],
    }
    path.write_text(json.dumps(plan))


def one_run(binary: str, base: str, workers: int, agents: int, capacity: int,
            work: Path) -> float:
    db = f"llmo_bench_{os.getpid()}_{workers}"
    psql(base, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql(base, f"CREATE DATABASE {db}")
    url = database_url(base, db)
    run = work / f"n{workers}-{time.time_ns()}"
    run.mkdir()
    ledger = run / "ledger"
    plan = run / "plan.json"
    write_plan(plan, agents, ledger)
    procs = []
    try:
        for i in range(workers):
            log = open(run / f"w{i}.log", "w")
            procs.append(subprocess.Popen(
                [binary, "worker", "--store", url, "--id", f"w{i}", "--capacity", str(capacity),
                 "--workdir", str(run / f"w{i}")],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL))
        # Let every worker connect and migrate before the clock starts.
        deadline = time.time() + 30
        while time.time() < deadline:
            if all("serving" in (run / f"w{i}.log").read_text() for i in range(workers)):
                break
            time.sleep(0.05)
        start = time.perf_counter()
        done = subprocess.run(
            [binary, "run", "--plan", str(plan), "--store", url, "--workers-only",
             "--concurrency", str(agents), "--run-dir", str(run / "runs")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{workers} worker(s): the run failed ({done.returncode}):\n{done.stderr[-2000:]}")
        lines = ledger.read_text().split()
        if len(lines) != agents or len(set(lines)) != agents:
            raise SystemExit(f"{workers} worker(s): {len(lines)} runs of {len(set(lines))} agents, expected {agents} once each")
        return elapsed
    finally:
        for p in procs:
            p.kill()
            p.wait()
        psql(base, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store-url", default=os.environ.get("LLMO_TEST_PG_URL"))
    ap.add_argument("--agents", type=int, default=2000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--capacity", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--binary", default=str(Path(__file__).resolve().parent.parent / "target/release/llm-orchestrate"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not args.store_url:
        print("--store-url (or LLMO_TEST_PG_URL) is required", file=sys.stderr)
        return 2
    counts = [int(n) for n in args.workers.split(",")]
    times: dict[int, list[float]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="llmo-workers-bench-") as tmp:
        for _ in range(args.runs):
            for n in counts:
                times[n].append(one_run(args.binary, args.store_url, n, args.agents, args.capacity, Path(tmp)))
    base = statistics.median(times[counts[0]])
    rows = []
    for n in counts:
        med = statistics.median(times[n])
        rows.append({"workers": n, "capacityEach": args.capacity, "medianSeconds": round(med, 3),
                     "agentsPerSecond": round(args.agents / med, 1),
                     "speedupVsFirst": round(base / med, 2), "runs": [round(t, 3) for t in times[n]]})
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}"
    if args.json:
        print(json.dumps({"agents": args.agents, "machine": machine, "results": rows}, indent=2))
    else:
        print(f"{args.agents} agents (`true`-like), machine: {machine}")
        print(f"{'workers':>7} {'median s':>9} {'agents/s':>9} {'speedup':>8}  runs")
        for r in rows:
            print(f"{r['workers']:>7} {r['medianSeconds']:>9} {r['agentsPerSecond']:>9} {r['speedupVsFirst']:>8}  {r['runs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
