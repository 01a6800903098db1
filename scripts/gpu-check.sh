#!/usr/bin/env bash
# One run on a machine with an NVIDIA GPU, under 5 minutes: are the GPU's logits the CPU's,
# how fast is it, and does the agent run there? Writes benches/results/gpu-<device>.json.
#
# Needs the CUDA build (scripts/build-cuda.sh makes dist/pae-local-cuda.gz; it need not be
# built there) and the CUDA 13 runtime libraries; nothing is fetched.
#   1. CPU-vs-GPU logits, teacher-forced over 64 tokens: a small synthetic model, then each
#      real test model in models/ that is present (they are skipped, and say so, when absent).
#   2. `bench --synthetic` for a 0.6B and a 7B shape in Q4_K (pp512, tg128).
#   3. One agent run, greedy, on the GPU and on the CPU, with both answers recorded.
#
# Environment: PAE_BIN (the binary; default: dist/pae-local-cuda.gz unpacked to /tmp),
# CUDA_LIBS (default /usr/local/cuda-13.0/targets/x86_64-linux/lib), DEVICE (default cuda:0),
# OUT_DIR (default benches/results), REPS (default 3).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
device=${DEVICE:-cuda:0}
reps=${REPS:-3}
out_dir=${OUT_DIR:-benches/results}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export LD_LIBRARY_PATH="${CUDA_LIBS:-/usr/local/cuda-13.0/targets/x86_64-linux/lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=${PAE_BIN:-}
if [ -z "$bin" ]; then
  [ -f dist/pae-local-cuda.gz ] || { echo "error: no dist/pae-local-cuda.gz: run scripts/build-cuda.sh first" >&2; exit 2; }
  bin="$work/pae-local"
  gunzip -c dist/pae-local-cuda.gz >"$bin" && chmod +x "$bin"
fi

step() { echo "== $*" >&2; }
# Runs a command, keeping its JSON stdout in $work/$1.json and its status in $work/$1.rc.
record() {
  local name=$1
  shift
  local t0=$SECONDS
  "$@" >"$work/$name.json" 2>"$work/$name.log"
  echo $? >"$work/$name.rc"
  echo $((SECONDS - t0)) >"$work/$name.secs"
  tail -n 3 "$work/$name.log" >&2
}

step "device"
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no GPU (nvidia-smi absent), none, none"; } >"$work/smi.txt" 2>&1
cat "$work/smi.txt" >&2

step "logits: synthetic llama:135m:q4_1, $device vs cpu"
record logits_synthetic "$bin" -q --device "$device" bench --synthetic llama:135m:q4_1 -p 0 -n 0 --vs-cpu 64 --json
for m in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf; do
  name=logits_${m%%.*}
  name=${name//[^A-Za-z0-9_]/_}
  if [ -f "models/$m" ]; then
    step "logits: $m, $device vs cpu"
    record "$name" "$bin" -q --device "$device" bench "models/$m" -p 0 -n 0 --vs-cpu 64 --json
  else
    step "logits: $m absent, skipped"
    echo '[]' >"$work/$name.json"
    echo skipped >"$work/$name.rc"
  fi
done

step "bench: synthetic qwen3:0.6b:q4_k and qwen2:7b:q4_k on $device"
record bench "$bin" -q --device "$device" bench --synthetic qwen3:0.6b:q4_k --synthetic qwen2:7b:q4_k \
  -p 512 -n 128 -r "$reps" --json

agent_model=default
[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ] || agent_model=synthetic:llama:135m:q4_1
objective="Compute 17 * 23 with the calculator, then add 100 to the result."
for side in device cpu; do
  dev=$device
  [ "$side" = cpu ] && dev=cpu
  step "agent on $dev ($agent_model)"
  args=(-q --device "$dev")
  [ "$agent_model" = default ] || args+=(--model "$agent_model")
  record "agent_$side" "$bin" "${args[@]}" run --json "$objective"
done

mkdir -p "$out_dir"
python3 - "$work" "$out_dir" "$device" "$agent_model" "$objective" <<'PY'
import json, os, re, sys
work, out_dir, device, agent_model, objective = sys.argv[1:6]

def load(name):
    try:
        return json.load(open(os.path.join(work, name + ".json")))
    except Exception as e:
        return {"error": f"no JSON output ({e}); log: " + open(os.path.join(work, name + ".log")).read()[-2000:]}

def rc(name):
    return open(os.path.join(work, name + ".rc")).read().strip()

smi = open(os.path.join(work, "smi.txt")).read().strip().split(", ")
logits = {}
for name in sorted(f[:-5] for f in os.listdir(work) if f.startswith("logits_") and f.endswith(".json")):
    rows = load(name)
    logits[name[len("logits_"):]] = "skipped: model file absent" if rc(name) == "skipped" else rows
bench = load("bench")
shapes = {}
if isinstance(bench, list):
    for r in bench:
        if "avg_ts" in r:
            key = "pp" if r["n_prompt"] else "tg"
            shapes.setdefault(r["model_filename"], {})[f"{key}{r['n_prompt'] or r['n_gen']}_tps"] = r["avg_ts"]
agents = {}
for f in sorted(os.listdir(work)):
    if f.startswith("agent_") and f.endswith(".json"):
        name = f[:-5]
        agents[name[len("agent_"):]] = {"exit": rc(name), "seconds": int(open(os.path.join(work, name + ".secs")).read()), "result": load(name)}
answers = [a["result"].get("final_answer") for a in agents.values() if isinstance(a["result"], dict)]
result = {
    "device": smi[0] if smi else "unknown",
    "driver": smi[1] if len(smi) > 1 else "unknown",
    "memory": smi[2] if len(smi) > 2 else "unknown",
    "pae_device": device,
    "logits_vs_cpu": logits,
    "throughput": shapes,
    "bench_rows": bench,
    "agent": {"model": agent_model, "objective": objective, "runs": agents,
              "same_answer_as_cpu": len(answers) == 2 and answers[0] is not None and answers[0] == answers[1]},
}
slug = re.sub(r"[^a-z0-9]+", "-", result["device"].lower()).strip("-") or "unknown"
path = os.path.join(out_dir, f"gpu-{slug}.json")
json.dump(result, open(path, "w"), indent=2)
print(path)
PY
