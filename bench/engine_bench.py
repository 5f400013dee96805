#!/usr/bin/env python3
"""Run-engine benchmark for llm-orchestrate (issue 3).

Measures, in one script:
  1. 1,000 agents running `true` at concurrency 8 with the journal on, against
     `make -j8` running the same 1,000 commands (target: wall-clock ratio <= 1.0).
  2. Peak RSS of a 10,000-agent run of `true` (target: under 100 MiB).

Each measurement is repeated (--runs, default 5, interleaved) and the medians
are compared. Wall time and peak RSS are per child (os.wait4).

Usage:
    python3 bench/engine_bench.py [--runs N] [--agents 1000] [--big 10000] [--binary PATH] [--json]

Exit code 0 when every target passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def measure(argv, cwd, env=None):
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{argv[0]} failed with {code}: {err[-2000:]}")
    return wall * 1000.0, usage.ru_maxrss / 1024.0


def write_plan(path: Path, agents: int):
    plan = {
        "orchestrationId": f"bench-{agents}",
        "executionMode": "continuous",
        "waves": [{"waveId": "w", "agents": [
            {"agentId": f"A{i:05d}", "workDescription": "noop", "command": ["true"]} for i in range(agents)
        ]}],
        "coordinationRules": {"progressReporting": "off"},
    }
    path.write_text(json.dumps(plan))


def write_makefile(path: Path, agents: int):
    targets = " ".join(f"t{i}" for i in range(agents))
    lines = [f".PHONY: all {targets}", f"all: {targets}"]
    lines += [f"t{i}:\n\t@true" for i in range(agents)]
    path.write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--big", type=int, default=10000)
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "llm-orchestrate"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    binary = Path(args.binary)
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release"], cwd=REPO, check=True)
    if not shutil.which("make"):
        raise SystemExit("make is needed")
    work = Path(tempfile.mkdtemp(prefix="llmo-engine-bench-"))
    env = dict(os.environ, CI="1")
    try:
        plan = work / "plan.json"
        write_plan(plan, args.agents)
        write_makefile(work / "Makefile", args.agents)
        big = work / "big.json"
        write_plan(big, args.big)
        ours, make = [], []
        for i in range(args.runs):
            ours.append(measure([str(binary), "run", "--plan", str(plan), "--concurrency", "8",
                                 "--run-dir", str(work / f"runs{i}")], work, env))
            make.append(measure(["make", "-s", "-j8", "-f", str(work / "Makefile")], work, env))
        big_wall, big_rss = measure([str(binary), "run", "--plan", str(big), "--concurrency", "8",
                                     "--run-dir", str(work / "runs-big")], work, env)
        ours_ms = statistics.median(w for w, _ in ours)
        make_ms = statistics.median(w for w, _ in make)
        result = {
            "agents": args.agents,
            "runs": args.runs,
            "llm_orchestrate_median_ms": round(ours_ms, 1),
            "make_j8_median_ms": round(make_ms, 1),
            "ratio": round(ours_ms / make_ms, 3),
            "llm_orchestrate_peak_rss_mib": round(max(r for _, r in ours), 1),
            "big_agents": args.big,
            "big_wall_ms": round(big_wall, 1),
            "big_peak_rss_mib": round(big_rss, 1),
        }
        checks = [
            (f"{args.agents} agents: llm-orchestrate / make -j8 <= 1.0", result["ratio"] <= 1.0, result["ratio"]),
            (f"{args.big} agents: peak RSS < 100 MiB", big_rss < 100.0, result["big_peak_rss_mib"]),
        ]
        if args.json:
            result["checks"] = [{"target": t, "pass": ok, "measured": m} for t, ok, m in checks]
            print(json.dumps(result, indent=2))
        else:
            print(f"{args.agents} agents running `true`, concurrency 8, {args.runs} runs each (medians):")
            print(f"  llm-orchestrate run (journal on): {ours_ms:8.1f} ms, peak RSS {result['llm_orchestrate_peak_rss_mib']} MiB")
            print(f"  make -j8:                         {make_ms:8.1f} ms")
            print(f"  ratio:                            {result['ratio']}")
            print(f"{args.big} agents: {big_wall:.0f} ms, peak RSS {big_rss:.1f} MiB")
            for target, ok, measured in checks:
                print(f"{'PASS' if ok else 'FAIL'}  {target}: {measured}")
        return 0 if all(ok for _, ok, _ in checks) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
