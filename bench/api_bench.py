#!/usr/bin/env python3
"""API-driver benchmark for llm-orchestrate (issue 4).

In one script, against one scripted provider server (`llm-orchestrate mock-provider`)
whose every turn takes 100 ms:

  1. llm-orchestrate runs 1,000 `claude` agents (Anthropic Messages API, streaming,
     built-in agent loop, journal on), each doing one scripted turn, at concurrency 100;
  2. a Python asyncio + httpx client (the seed's GPT pattern: asyncio tasks behind a
     semaphore) makes the same 1,000 streaming requests at concurrency 100.

  3. the floor: `examples/bare_api_client.rs`, the thinnest Rust client (tokio, reqwest, a
     semaphore) making the same 1,000 calls as the Python one, with none of an orchestrator's
     work. It shows what this machine and the scripted server allow at all; it is not a target.

Targets: llm-orchestrate's wall time within 5% of the ideal (1,000 / 100 x 100 ms = 1.0 s)
and below the Python baseline. Peak RSS of the orchestrator is reported, and its wall time over
the floor's. All three are timed the same way: from starting a process to its exit.

Usage:
    python3 bench/api_bench.py [--agents 1000] [--concurrency 100] [--latency-ms 100] [--runs 3]

Needs httpx (`pip install httpx`). Exit code 0 when every target passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
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


def start_server(binary: Path, script: Path):
    proc = subprocess.Popen(
        [str(binary), "mock-provider", "--script", str(script), "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline().strip()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"mock-provider did not start: {line} {proc.stderr.read()}")
    return proc, line.rsplit(" ", 1)[-1]


def run_orchestrator(binary: Path, plan: Path, base: str, concurrency: int, work: Path, i: int):
    env = dict(os.environ, CI="1", ANTHROPIC_BASE_URL=base, ANTHROPIC_API_KEY="bench-key")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(binary), "run", "--plan", str(plan), "--concurrency", str(concurrency),
         "--run-dir", str(work / f"runs{i}")],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"llm-orchestrate failed with {code}: {proc.stderr.read().decode()[-2000:]}")
    return wall * 1000.0, usage.ru_maxrss / 1024.0


def run_bare_client(binary: Path, base: str, agents: int, concurrency: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run([str(binary), base, str(agents), str(concurrency)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bare_api_client failed with {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return wall * 1000.0


async def python_baseline(base: str, agents: int, concurrency: int) -> float:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        async def one(i: int):
            body = {
                "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
                "system": "You are agent A%05d." % i,
                "messages": [{"role": "user", "content": "You are agent A%05d. Do the work." % i}],
            }
            async with sem:
                async with client.stream("POST", "/v1/messages", json=body,
                                         headers={"x-api-key": "bench-key", "anthropic-version": "2023-06-01"}) as r:
                    text = []
                    async for line in r.aiter_lines():
                        if line.startswith("data: "):
                            event = json.loads(line[6:])
                            if event.get("type") == "content_block_delta":
                                text.append(event["delta"].get("text", ""))
                    return "".join(text)

        start = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(agents)))
        wall = time.perf_counter() - start
    assert all("COMPLETE" in r for r in results), "every baseline request got its scripted reply"
    return wall * 1000.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "llm-orchestrate"))
    parser.add_argument("--bare-binary",
                        default=str(REPO / "target" / "release" / "examples" / "bare_api_client"))
    args = parser.parse_args()
    binary = Path(args.binary)
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release"], cwd=REPO, check=True)
    bare = Path(args.bare_binary)
    if not bare.exists():
        subprocess.run(["cargo", "build", "--release", "--example", "bare_api_client"], cwd=REPO, check=True)
    work = Path(tempfile.mkdtemp(prefix="llmo-api-bench-"))
    try:
        script = work / "script.json"
        script.write_text(json.dumps({"agents": {"*": {"turns": [
            {"text": "[STATUS: COMPLETE] done\n", "latencyMs": args.latency_ms}]}}}))
        plan = work / "plan.json"
        plan.write_text(json.dumps({
            "orchestrationId": "api-bench", "platform": "claude", "executionMode": "continuous",
            "waves": [{"waveId": "w", "agents": [
                {"agentId": "A%05d" % i, "workDescription": "noop"} for i in range(args.agents)]}],
            "coordinationRules": {"progressReporting": "off"},
        }))
        server, base = start_server(binary, script)
        try:
            ours, py, floor = [], [], []
            for i in range(args.runs):
                ours.append(run_orchestrator(binary, plan, base, args.concurrency, work, i))
                floor.append(run_bare_client(bare, base, args.agents, args.concurrency))
                py.append(asyncio.run(python_baseline(base, args.agents, args.concurrency)))
        finally:
            server.terminate()
            server.wait()
        ideal = args.agents / args.concurrency * args.latency_ms
        ours_ms = statistics.median(w for w, _ in ours)
        py_ms = statistics.median(py)
        floor_ms = statistics.median(floor)
        rss = max(r for _, r in ours)
        print(f"{args.agents} agents x one {args.latency_ms} ms turn, concurrency {args.concurrency}, "
              f"{args.runs} runs (medians); ideal {ideal:.0f} ms")
        print(f"  llm-orchestrate run:      {ours_ms:8.1f} ms  (runs: {', '.join('%.0f' % w for w, _ in ours)}), "
              f"peak RSS {rss:.1f} MiB")
        print(f"  python asyncio + httpx:   {py_ms:8.1f} ms  (runs: {', '.join('%.0f' % w for w in py)})")
        print(f"  floor, bare Rust client:  {floor_ms:8.1f} ms  (runs: {', '.join('%.0f' % w for w in floor)}), "
              f"{floor_ms / ideal:.3f} x ideal; llm-orchestrate {ours_ms - floor_ms:+.1f} ms over it "
              f"({ours_ms / floor_ms:.3f} x)")
        checks = [
            ("within 5% of the ideal", ours_ms <= ideal * 1.05, f"{ours_ms / ideal:.3f} x ideal"),
            ("below the Python baseline", ours_ms < py_ms, f"{ours_ms / py_ms:.3f} x baseline"),
        ]
        for name, ok, measured in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {name}: {measured}")
        return 0 if all(ok for _, ok, _ in checks) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
