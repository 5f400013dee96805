#!/usr/bin/env python3
"""Parallel execution with threads (GPT pattern) for the orchestration {{ plan.orchestration_id | pyrepr }}.

Rendered by llm-orchestrate. Runs each wave's agents as parallel conversation
threads against the OpenAI Chat Completions API (or any OpenAI-compatible
server) and aggregates their results. Standard library only.

    OPENAI_API_KEY=...  python3 this_script.py            # run
    OPENAI_BASE_URL=http://127.0.0.1:11434/v1 python3 this_script.py   # a local server
    python3 this_script.py --dry-run                       # show the plan, call nothing
    python3 this_script.py --protocol                      # print the coordination protocol

Environment: OPENAI_API_KEY, OPENAI_BASE_URL (default https://api.openai.com/v1),
OPENAI_MODEL (default gpt-4.1; an agent's own model wins), LLMO_TIMEOUT (seconds, default 600).
Exit code: 0 when every agent reported [STATUS: COMPLETE], 1 otherwise.
"""
import asyncio
import datetime
import json
import os
import re
import sys
import urllib.error
import urllib.request

PLAN = json.loads({{ plan_json_literal }})
PROTOCOL = {% filter pyrepr %}{% include "partials/status-protocol.md" %}

{% include "partials/quality-gates.md" %}

{% include "partials/error-recovery.md" %}{% endfilter %}

AGENTS = {a["agentId"]: a for w in PLAN["waves"] for a in w["agents"]}
BASE_URL = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
MODEL = os.environ.get("OPENAI_MODEL", "gpt-4.1")
TIMEOUT = float(os.environ.get("LLMO_TIMEOUT", "600"))
MARKER = re.compile(r"^\s*\[(?:STATUS:\s*)?(STARTED|PROGRESS-(\d{1,3})%|COMPLETE|FAILED|BLOCKED)\]\s*(.*)$", re.M)
RESULTS = {}


def create_thread(agent_id):
    """A conversation thread for one agent: its system instruction and task prompt."""
    agent = AGENTS[agent_id]
    return {
        "agentId": agent_id,
        "model": agent.get("model") or MODEL,
        "messages": [
            {"role": "system", "content": PLAN["systemInstruction"] + "\n\n" + PROTOCOL},
            {"role": "user", "content": agent["prompt"]},
        ],
    }


def _chat(thread):
    body = json.dumps({"model": thread["model"], "messages": thread["messages"]}).encode()
    request = urllib.request.Request(
        BASE_URL + "/chat/completions",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer " + os.environ.get("OPENAI_API_KEY", ""),
        },
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return json.load(response)


def parse_status(text):
    """The last STATUS marker of a reply: (status, progress, detail)."""
    status, progress, detail = "NO-STATUS", 0, ""
    for match in MARKER.finditer(text):
        kind, percent, detail = match.group(1), match.group(2), match.group(3).strip()
        if percent:
            status, progress = "PROGRESS", int(percent)
        else:
            status = kind
            progress = 100 if kind == "COMPLETE" else progress
    return status, progress, detail


async def run_thread(thread):
    """Runs one agent's thread; never raises, failures become FAILED results."""
    agent_id = thread["agentId"]
    blocked = [d for d in AGENTS[agent_id]["dependencies"] if RESULTS.get(d, {}).get("status") != "COMPLETE"]
    if blocked:
        return {"id": agent_id, "status": "BLOCKED", "progress": 0, "blockers": blocked, "detail": "waiting for " + ", ".join(blocked)}
    try:
        reply = await asyncio.to_thread(_chat, thread)
        text = reply["choices"][0]["message"].get("content") or ""
    except (urllib.error.URLError, OSError, KeyError, IndexError, ValueError) as err:
        return {"id": agent_id, "status": "FAILED", "progress": 0, "blockers": [], "detail": str(err)}
    status, progress, detail = parse_status(text)
    if status == "NO-STATUS":
        status, detail = "COMPLETE", "finished without a STATUS marker"
        progress = 100
    return {"id": agent_id, "status": status, "progress": progress, "blockers": [], "detail": detail, "output": text}

{% for wave in waves %}

async def execute_wave_{{ wave.number }}():
    """Wave {{ wave.number }} ({{ wave.wave_id }}): {% if wave.parallel %}agents run concurrently{% else %}agents run one after another{% endif %}."""
    threads = []

    # Create {% if wave.parallel %}parallel {% endif %}threads
{% for agent in wave.agents %}
    {{ agent.ident }}_thread = create_thread({{ agent.agent_id | pyrepr }})
    threads.append({{ agent.ident }}_thread)
{% endfor %}

{% if wave.parallel %}
    # Execute concurrently
    results = await asyncio.gather(*(run_thread(t) for t in threads))
{% else %}
    # Execute in order
    results = []
    for thread in threads:
        result = await run_thread(thread)
        RESULTS[result["id"]] = result
        results.append(result)
{% endif %}

    return aggregate_results(results)
{% endfor %}

WAVES = [{% for wave in waves %}({{ wave.wave_id | pyrepr }}, execute_wave_{{ wave.number }}){% if not loop.last %}, {% endif %}{% endfor %}]


def aggregate_results(results):
    """Records results and returns the aggregate status (the seed's status format)."""
    for result in results:
        RESULTS[result["id"]] = result
    agents = [RESULTS.get(a, {"id": a, "status": "PENDING", "progress": 0, "blockers": []}) for a in AGENTS]
    return {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "overallProgress": round(sum(a["progress"] for a in agents) / max(len(agents), 1)),
        "agentStatus": [{"id": a["id"], "status": a["status"], "progress": a["progress"], "blockers": a.get("blockers", [])} for a in agents],
        "risks": ["%s %s: %s" % (a["id"], a["status"], a.get("detail", "")) for a in agents if a["status"] in ("FAILED", "BLOCKED")],
        "recommendations": ["Fix %s and run again" % a["id"] for a in agents if a["status"] == "FAILED"],
    }


async def main():
    if "--protocol" in sys.argv:
        print(PROTOCOL)
        return 0
    if "--dry-run" in sys.argv:
        for wave_id, _ in WAVES:
            wave = next(w for w in PLAN["waves"] if w["waveId"] == wave_id)
            mode = "parallel" if wave["parallel"] else "sequential"
            print("%s (%s): %s" % (wave_id, mode, ", ".join(a["agentId"] for a in wave["agents"])))
        return 0
    status = None
    for wave_id, execute in WAVES:
        print("[wave %s] starting" % wave_id, file=sys.stderr)
        status = await execute()
        for agent in status["agentStatus"]:
            if agent["id"] in {a["agentId"] for w in PLAN["waves"] if w["waveId"] == wave_id for a in w["agents"]}:
                print("[wave %s] %s: %s" % (wave_id, agent["id"], agent["status"]), file=sys.stderr)
    status = status or aggregate_results([])
    print(json.dumps(status, indent=2))
    return 0 if all(a["status"] == "COMPLETE" for a in status["agentStatus"]) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
