#!/usr/bin/env bash
# The whole flow in one command: three Claude Code agents (the real CLI) in
# two waves, each in its own git worktree of a fresh demo repository, against
# the scripted provider server (no network, no API key). Wave 2 reads wave 1's
# merged work; merge-all lands everything on `main`.
#
#   bash examples/claude-demo/run.sh
#
# Needs git, a Rust toolchain (or LLMO_BIN=path/to/llm-orchestrate) and Claude
# Code: LLMO_CLAUDE_BIN, else .ci/clis (installed by .ci/run), else `claude` on
# PATH (npm install -g @anthropic-ai/claude-code).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [ -z "${LLMO_BIN:-}" ]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  LLMO_BIN="$root/target/release/llm-orchestrate"
fi
if [ -z "${LLMO_CLAUDE_BIN:-}" ]; then
  if [ -x "$root/.ci/clis/node_modules/.bin/claude" ]; then
    LLMO_CLAUDE_BIN="$root/.ci/clis/node_modules/.bin/claude"
  elif command -v claude >/dev/null; then
    LLMO_CLAUDE_BIN="$(command -v claude)"
  else
    echo "Claude Code is not installed: npm install -g @anthropic-ai/claude-code" >&2
    exit 2
  fi
fi
export LLMO_CLAUDE_BIN

demo="${LLMO_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/llmo-demo.XXXXXX")}"
mkdir -p "$demo/repo" "$demo/home"
cd "$demo/repo"
git init -q -b main
mkdir -p svc/api svc/client docs
echo "# greeting service" > README.md
git add README.md
git -c user.name=demo -c user.email=demo@localhost commit -qm "start"

# The scripted provider server, on a free port.
"$LLMO_BIN" mock-provider --script "$here/script.json" --addr 127.0.0.1:0 > "$demo/mock.log" 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT
url=""
for _ in $(seq 100); do
  url="$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$demo/mock.log")"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$demo/mock.log" >&2; exit 1; }

export ANTHROPIC_BASE_URL="$url" ANTHROPIC_API_KEY="demo-key-not-a-secret" HOME="$demo/home"
status=0
"$LLMO_BIN" run --plan "$here/plan.json" --workdir . --stall-timeout 2m || status=$?

echo
echo "== the repository after the run ($demo/repo) =="
git log --oneline --graph --all | head -20
echo
echo "== docs/USAGE.md, written in wave 2 from wave 1's merged code =="
cat docs/USAGE.md 2>/dev/null || echo "(missing)"
echo
"$LLMO_BIN" status
exit "$status"
