#!/usr/bin/env python3
"""Plan-loading benchmark for llm-orchestrate (issue 2).

Generates a large wave plan (default: 10,000 agents in 100 waves, each agent
depending on 2 agents of the previous wave), then runs, interleaved, N times:

    llm-orchestrate analyze PLAN --json > /dev/null   (load + validate + analyze)
    llm-orchestrate validate PLAN > /dev/null         (load + validate; information only)
    jq . PLAN > /dev/null                              (the reference)

and measures, for every single run, the wall time and the peak resident set
size of that child (``ru_maxrss`` from ``os.wait4``).

Targets (checked against the ``analyze`` command):
    * median wall time < 100 ms
    * peak RSS < 64 MiB (the largest ru_maxrss over all runs)
    * median wall time no slower than jq's median on the same file (ratio <= 1.0)

Usage:
    python3 bench/plan_bench.py                     # 10,000 agents, 100 waves, 15 runs
    python3 bench/plan_bench.py --runs 31
    python3 bench/plan_bench.py --agents 1000 --waves 10
    python3 bench/plan_bench.py --binary target/release/llm-orchestrate --json

Exit code: 0 when every target passes, 1 when one fails, 2 on a setup error
(binary cannot be built, jq missing, generated plan not valid...).

The plan is written to bench/out/ (git-ignored). The binary is built with
``cargo build --release`` when it does not exist. Only the Python standard
library is used.

Note on RSS: on Linux a child's ru_maxrss can never be lower than the
parent's own RSS high-water mark at the time of exec (the kernel carries it
over), so this script keeps itself small (the plan is streamed to disk) and
reports that floor, measured with ``true``, next to the results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"

TARGET_MS = 100.0
TARGET_RSS_MIB = 64.0
TARGET_RATIO = 1.0

VERBS = ["Implement", "Refactor", "Harden", "Document", "Migrate", "Test", "Optimize", "Instrument"]
THINGS = [
    "the request handlers",
    "the persistence layer",
    "the retry logic",
    "the configuration loader",
    "the metrics exporter",
    "the public API surface",
    "the background jobs",
    "the cache invalidation",
]


def wave_sizes(agents: int, waves: int) -> list[int]:
    """Splits `agents` over `waves` as evenly as possible (earlier waves get the remainder)."""
    base, extra = divmod(agents, waves)
    return [base + (1 if i < extra else 0) for i in range(waves)]


def write_plan(path: Path, agents: int, waves: int, seed: int) -> tuple[int, int]:
    """Streams the plan to `path`, one wave at a time, so this process stays small.

    Returns (agent count, dependency edge count).
    """
    rng = random.Random(seed)
    sizes = wave_sizes(agents, waves)
    count = edges = 0
    previous: list[str] = []
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write('{"orchestrationId": "bench-10k", "executionMode": "waves", "waves": [\n')
        for i, size in enumerate(sizes, start=1):
            members = []
            ids = []
            for j in range(1, size + 1):
                agent_id = f"A{i}_{j}"
                deps = rng.sample(previous, min(2, len(previous))) if previous else []
                edges += len(deps)
                members.append(
                    {
                        "agentId": agent_id,
                        "workDescription": (
                            f"{rng.choice(VERBS)} {rng.choice(THINGS)} of service {i}-{j}, "
                            f"keeping the existing behaviour and adding tests for every change."
                        ),
                        "scope": f"svc-{i}-{j}",
                        "estimatedDuration": f"{rng.randint(5, 120)}m",
                        "dependencies": deps,
                        "qualityGates": ["unit-tests"],
                    }
                )
                ids.append(agent_id)
            count += size
            wave = {"waveId": f"wave-{i}", "parallel": True, "agents": members}
            f.write(json.dumps(wave, indent=1))
            f.write(",\n" if i < len(sizes) else "\n")
            previous = ids
        f.write(
            '], "coordinationRules": {"conflictHandling": "pause-and-resolve", '
            '"progressReporting": "every-30-min", "failureStrategy": "continue-others"}}\n'
        )
    os.replace(tmp, path)
    return count, edges


def run_once(argv: list[str]) -> dict:
    """Runs one child with stdout to /dev/null; returns wall ms, CPU ms, peak RSS KiB and exit code."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped; keep Popen quiet
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return {
        "wall_ms": wall * 1000.0,
        "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000.0,
        "rss_kib": usage.ru_maxrss,  # KiB on Linux
        "code": proc.returncode,
        "stderr": stderr,
    }


def summarize(samples: list[dict]) -> dict:
    walls = [s["wall_ms"] for s in samples]
    cpus = [s["cpu_ms"] for s in samples]
    rss = [s["rss_kib"] / 1024.0 for s in samples]
    return {
        "runs": len(samples),
        "median_ms": statistics.median(walls),
        "min_ms": min(walls),
        "max_ms": max(walls),
        "median_cpu_ms": statistics.median(cpus),
        "median_rss_mib": statistics.median(rss),
        "max_rss_mib": max(rss),
        "wall_ms": [round(w, 3) for w in walls],
        "rss_mib": [round(r, 2) for r in rss],
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ensure_binary(binary: Path) -> None:
    if binary.exists():
        return
    print(f"{binary} not found: running cargo build --release", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release"], cwd=REPO, check=True)
    if not binary.exists():
        raise SystemExit(f"error: {binary} still missing after cargo build --release")


def check_plan(binary: Path, plan: Path, agents: int, waves: int) -> None:
    """The generated plan must be valid with no warnings, or the benchmark measures an error path."""
    result = subprocess.run(
        [str(binary), "validate", str(plan), "--json"], capture_output=True, text=True
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = {}
    ok = (
        result.returncode == 0
        and report.get("valid") is True
        and report.get("warnings") == 0
        and report.get("agents") == agents
        and report.get("waves") == waves
    )
    if not ok:
        sys.stderr.write(result.stdout[:2000] + result.stderr[:2000])
        print(f"error: the generated plan {plan} is not a clean, valid plan", file=sys.stderr)
        raise SystemExit(2)


def fmt_table(results: dict) -> str:
    rows = [("command", "median ms", "min ms", "max ms", "median CPU ms", "median RSS MiB", "max RSS MiB")]
    for name, r in results["commands"].items():
        rows.append(
            (
                name,
                f"{r['median_ms']:.1f}",
                f"{r['min_ms']:.1f}",
                f"{r['max_ms']:.1f}",
                f"{r['median_cpu_ms']:.1f}",
                f"{r['median_rss_mib']:.1f}",
                f"{r['max_rss_mib']:.1f}",
            )
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
        lines.append("| " + " | ".join(cells) + " |")
        if k == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths[:1]) + "|"
                         + "|".join("-" * (w + 1) + ":" for w in widths[1:]) + "|")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=10_000, help="total agents (default 10000)")
    parser.add_argument("--waves", type=int, default=100, help="waves (default 100)")
    parser.add_argument("--runs", type=int, default=15, help="measured runs per command (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs per command first (default 2)")
    parser.add_argument("--seed", type=int, default=2, help="random seed for the dependencies (default 2)")
    parser.add_argument(
        "--binary",
        type=Path,
        default=REPO / "target" / "release" / "llm-orchestrate",
        help="the binary to measure (default target/release/llm-orchestrate, built if missing)",
    )
    parser.add_argument("--jq", default="jq", help="the jq to compare with (default: jq on PATH)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.agents < 1 or args.waves < 1 or args.agents < args.waves or args.runs < 1:
        parser.error("need 1 <= --waves <= --agents and --runs >= 1")

    binary = args.binary if args.binary.is_absolute() else (Path.cwd() / args.binary)
    ensure_binary(binary)
    jq = shutil.which(args.jq)
    if jq is None:
        print(f"error: {args.jq} not found on PATH", file=sys.stderr)
        return 2
    true = shutil.which("true") or "/bin/true"

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    plan = OUT_DIR / f"plan-{args.agents}x{args.waves}-s{args.seed}.json"
    agents, edges = write_plan(plan, args.agents, args.waves, args.seed)
    check_plan(binary, plan, agents, args.waves)

    commands = {
        "llm-orchestrate analyze --json": [str(binary), "analyze", str(plan), "--json"],
        "llm-orchestrate validate": [str(binary), "validate", str(plan)],
        "jq .": [jq, ".", str(plan)],
    }
    names = list(commands)
    samples: dict[str, list[dict]] = {name: [] for name in names}
    floor: list[dict] = []

    for _ in range(args.warmup):
        for name in names:
            run_once(commands[name])
    for i in range(args.runs):
        # Interleave, rotating the order so no command always follows another.
        k = i % len(names)
        for name in names[k:] + names[:k]:
            s = run_once(commands[name])
            if s["code"] != 0:
                print(f"error: {name} exited with {s['code']}:\n{s['stderr'][:2000]}", file=sys.stderr)
                return 2
            samples[name].append(s)
        floor.append(run_once([true]))

    results: dict = {
        "benchmark": "plan loading (issue 2)",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "loadavg_1m": os.getloadavg()[0],
        },
        "plan": {
            "file": str(plan.relative_to(REPO)) if plan.is_relative_to(REPO) else str(plan),
            "bytes": plan.stat().st_size,
            "agents": agents,
            "waves": args.waves,
            "edges": edges,
            "seed": args.seed,
        },
        "binary": str(binary),
        "jq_version": subprocess.run([jq, "--version"], capture_output=True, text=True).stdout.strip(),
        "commands": {name: summarize(samples[name]) for name in names},
        "rss_floor_mib": max(s["rss_kib"] for s in floor) / 1024.0,
    }
    ana = results["commands"]["llm-orchestrate analyze --json"]
    ref = results["commands"]["jq ."]
    ratio = ana["median_ms"] / ref["median_ms"]
    results["ratio_median"] = ratio
    results["ratio_min"] = ana["min_ms"] / ref["min_ms"]
    results["targets"] = [
        {
            "target": f"analyze median wall < {TARGET_MS:g} ms",
            "measured": round(ana["median_ms"], 1),
            "pass": ana["median_ms"] < TARGET_MS,
        },
        {
            "target": f"analyze peak RSS < {TARGET_RSS_MIB:g} MiB (max over runs)",
            "measured": round(ana["max_rss_mib"], 1),
            "pass": ana["max_rss_mib"] < TARGET_RSS_MIB,
        },
        {
            "target": f"analyze / jq median wall <= {TARGET_RATIO:g}",
            "measured": round(ratio, 3),
            "pass": ratio <= TARGET_RATIO,
        },
    ]
    all_pass = all(t["pass"] for t in results["targets"])
    results["pass"] = all_pass

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        p = results["plan"]
        m = results["machine"]
        print(
            f"plan: {p['file']} ({p['bytes'] / 1048576:.2f} MiB, {p['agents']} agents, "
            f"{p['waves']} waves, {p['edges']} edges)"
        )
        print(f"machine: {m['nproc']} x {m['cpu']}, load {m['loadavg_1m']:.2f}; {results['jq_version']}")
        print(f"runs: {args.runs} per command, interleaved, after {args.warmup} warm-up run(s)")
        print()
        print(fmt_table(results))
        print()
        print(f"ratio analyze/jq: {ratio:.3f} (median), {results['ratio_min']:.3f} (min)")
        print(f"RSS floor (ru_maxrss of `true` spawned by this script): {results['rss_floor_mib']:.1f} MiB")
        print()
        for t in results["targets"]:
            print(f"{'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['measured']}")
        print()
        print("ALL PASS" if all_pass else "SOME TARGETS FAILED")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
