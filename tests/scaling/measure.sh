#!/usr/bin/env bash
# The load one run puts on what a cluster deployment shares (docs/scaling.md): LLM requests,
# journal and HCC writes, bytes written, jobs started — one `sophon run` of STRATEGY on
# COMPETITION for TIME against tests/scaling/fake_model.py, a model that answers at once (so the
# figures are a run's upper bound: nothing waits on a model). Then the submit-to-exit latency of
# a trivial job on each configured cluster backend.
# Usage: tests/scaling/measure.sh DATA_DIR [COMPETITION] [STRATEGY] [TIME]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data=$(cd "$1" && pwd); competition=${2:-spaceship-titanic}; strategy=${3:-ml-master-hcc}; time=${4:-3m}
sophon=${SOPHON:-$root/target/release/sophon}
work=$(mktemp -d); cd "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 "$root/tests/scaling/fake_model.py" "$port" & model=$!
trap 'kill $model 2>/dev/null; rm -rf "$work"' EXIT
cat > sophon.toml <<TOML
[llm]
default = "fake"
cache = false
[llm.providers.fake]
kind = "openai"
base-url = "http://127.0.0.1:$port/v1"
model = "fake"
supports-json-schema = true
[hcc]
store = "hcc.sqlite"
[run]
runs-dir = "runs"
policy = "hcc"
[jobs.local]
jobs-dir = "jobs"
TOML
if [ -n "${SOPHON_SLURM_URL:-}" ]; then printf '[jobs.slurm]\nshared-dir = "%s/shared"\npoll-ms = 200\n' "$work" >> sophon.toml; fi
if [ -n "${SOPHON_RAY_URL:-}" ]; then printf '[jobs.ray]\nurl = "%s"\nshared-dir = "%s/shared"\npoll-ms = 200\n' "$SOPHON_RAY_URL" "$work" >> sophon.toml; fi
sleep 1
start=$(date +%s.%N)
"$sophon" run --competition "$competition" --data-dir "$data" --strategy "$strategy" \
  --time-limit "$time" --json > events.jsonl
end=$(date +%s.%N)
run=$(ls -d runs/*/)
python3 - "$run" "$start" "$end" <<'PY'
import json, os, sqlite3, sys
run, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
minutes = (end - start) / 60
def size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
summary = json.load(open(os.path.join(run, "summary.json")))
requests = [l.split() for l in open("fake_model_requests.log")]
journal = open(os.path.join(run, "journal.jsonl"), "rb").read().splitlines()
db = sqlite3.connect("hcc.sqlite")
tables = [t for (t,) in db.execute("select name from sqlite_master where type='table'")]
rows = {t: db.execute(f"select count(*) from \"{t}\"").fetchone()[0] for t in tables}
jobs = [d for d in os.listdir("jobs") if d.startswith("local-")]
out = {
    "minutes": round(minutes, 2), "nodes": summary["nodes"],
    "llm_requests": len(requests),
    "llm_bytes_in": sum(int(r[1]) for r in requests), "llm_bytes_out": sum(int(r[2]) for r in requests),
    "journal_entries": len(journal), "journal_bytes": sum(len(l) + 1 for l in journal),
    "hcc_rows": sum(rows.values()), "hcc_rows_by_table": rows, "hcc_bytes": os.path.getsize("hcc.sqlite"),
    "run_dir_bytes": size(run), "jobs": len(jobs), "job_dirs_bytes": size("jobs"),
}
per_min = {k + "_per_min": round(v / minutes, 1) for k, v in out.items()
           if isinstance(v, int) and k != "nodes"}
print(json.dumps({**out, **per_min}, indent=1))
PY
for backend in slurm ray; do
  if "$sophon" job run --backend "$backend" -- true >/dev/null 2>&1; then
    t0=$(date +%s.%N)
    for _ in 1 2 3 4 5; do "$sophon" job run --backend "$backend" -- true >/dev/null 2>&1; done
    t1=$(date +%s.%N)
    echo "{\"backend\": \"$backend\", \"submit_to_exit_s\": $(python3 -c "print(round(($t1 - $t0) / 5, 2))")}"
  fi
done
