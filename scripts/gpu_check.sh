#!/bin/bash
# Device check (docs/gpu-check.md), run on the lent machine after scripts/gpu_prepare.sh here:
#   install the carried wheels, give the two models random weights of their real architectures
#   (a step costs the same whatever the values), time bench/train_speed.py at batch 64 in fp32 and
#   bf16, run the fast suite, and time both precisions again if time is left. Results go to $OUT.
#   On the CPU first (packages from .venv): SKIP_WHEELS=1 OUT=/tmp/o DEV=cpu B=4 L=16 N=1 W=0 NOTESTS=1
set -o pipefail
: "${OUT:?set OUT to the folder that receives the results}"
[ -n "$SKIP_WHEELS" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false WINNOW_DATA=$PWD/.gpu/data PYTHONUNBUFFERED=1
MODELS=${MODELS:-/tmp/models}
mkdir -p $MODELS && cp -r .gpu/models/* $MODELS/
nvidia-smi -L
python3 - "$MODELS" <<'PY'
import sys, pathlib, torch, transformers, sentence_transformers
from transformers import AutoConfig, AutoModel
print("torch", torch.__version__, "st", sentence_transformers.__version__, "transformers", transformers.__version__)
for m in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(m)).save_pretrained(m)
    print("random weights:", m.name)
PY
DEV=${DEV:-cuda}; B=${B:-64}; L=${L:-128}; N=${N:-50}; W=${W:-3}
speed() {  # $1: precision, $2: suffix
  timeout ${T:-150} python3 bench/train_speed.py --student $MODELS/all-MiniLM-L6-v2 --guide $MODELS/all-mpnet-base-v2 \
    --device $DEV --batch-size $B --max-length $L --precision $1 --warmup $W --steps $N --json $OUT/speed-$1$2.json 2>&1 \
    | grep -v -i warn | grep -v "Loading weights"  # the tables; at most 8 files come back from $OUT
}
speed fp32 ""; speed bf16 ""
echo "elapsed $SECONDS s"
[ -n "$NOTESTS" ] && exit 0
HF_HOME=/tmp/hf-empty timeout 200 python3 -m pytest -q -p no:cacheprovider -m "not slow and not lucene" --ignore tests/test_mteb.py 2>&1 | tee $OUT/tests.log | tail -15
echo "elapsed $SECONDS s"
if [ $SECONDS -lt 300 ]; then speed fp32 "-2"; speed bf16 "-2"; fi
echo "elapsed $SECONDS s"
