#!/usr/bin/env bash
# Check Winnow's GPU path on a machine with an NVIDIA GPU (see docs/gpu.md).
#
#   bash scripts/gpu_check.sh                  # from the repository root, in the environment
#                                              # where Winnow is installed with the gpu extra
#
# Steps: report what the GPU stack sees (torch, faiss, onnxruntime), run the test suite (tests
# place models and faiss indexes on the GPU when one is visible), then time training steps and
# document encoding on the GPU with bench.train_speed and bench.encode_speed. Prints each step's
# table and a summary; figures go to $OUT (default out/gpu-check).
#
# Environment: PYTHON (default python), OUT, DATA (BEIR data set for the benches, default scifact;
# fetched into the data root with `winnow data fetch` when missing), STEPS (timed training steps per
# loss, default 20), LIMIT (documents encoded, default 2000).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${OUT:-out/gpu-check}
DATA=${DATA:-scifact}
STEPS=${STEPS:-20}
LIMIT=${LIMIT:-2000}
export TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"

echo "## GPU stack"
$PYTHON - <<'PY' || { echo "gpu_check: torch sees no CUDA device; see docs/gpu.md" >&2; exit 1; }
import faiss
import onnxruntime
import torch

rows = [
    ("torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"),
    ("faiss", faiss.__version__, f"{faiss.get_num_gpus()} GPU(s)"),
    ("onnxruntime", onnxruntime.__version__, ", ".join(onnxruntime.get_available_providers())),
]
print("| package | version | sees |\n|---|---|---|")
for name, version, sees in rows:
    print(f"| {name} | {version} | {sees} |")
if not torch.cuda.is_available():
    raise SystemExit(1)
if faiss.get_num_gpus() == 0:
    print("faiss has no GPU support here: install faiss-gpu-cu12 (docs/gpu.md); indexes stay on the CPU")
if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
    print("onnxruntime has no CUDA provider: install onnxruntime-gpu (docs/gpu.md); ONNX runs on the CPU")
PY

declare -A RESULT SECONDS_TAKEN
step() {  # step NAME COMMAND...: run it, remember its exit status and duration
  local name=$1 start=$SECONDS
  shift
  echo
  echo "## $name"
  "$@"
  RESULT[$name]=$?
  SECONDS_TAKEN[$name]=$((SECONDS - start))
}

step "fetch $DATA" $PYTHON -m retrieval data fetch "$DATA"
step "tests" $PYTHON -m pytest -q -m "not slow"
step "train speed fp32" $PYTHON -m bench.train_speed --data "$DATA" --device cuda --precision fp32 \
  --batch-size 64 --max-length 128 --warmup 3 --steps "$STEPS" --json "$OUT/train_speed_fp32.json"
step "train speed bf16" $PYTHON -m bench.train_speed --data "$DATA" --device cuda --precision bf16 \
  --batch-size 64 --max-length 128 --warmup 3 --steps "$STEPS" --json "$OUT/train_speed_bf16.json"
step "encode speed" $PYTHON -m bench.encode_speed --data "$DATA" --device cuda --limit "$LIMIT" \
  --work "$OUT/onnx" --json "$OUT/encode_speed.json"

echo
echo "## Summary"
echo "| step | result | seconds |"
echo "|---|---|---|"
failed=0
for name in "fetch $DATA" "tests" "train speed fp32" "train speed bf16" "encode speed"; do
  if [ "${RESULT[$name]}" -eq 0 ]; then result=ok; else result="failed (exit ${RESULT[$name]})"; failed=1; fi
  echo "| $name | $result | ${SECONDS_TAKEN[$name]} |"
done
echo "Figures: $OUT"
exit $failed
