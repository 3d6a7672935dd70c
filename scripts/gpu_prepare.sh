#!/bin/bash
# Prepare what a lent GPU machine lacks (docs/gpu-check.md), in two git-ignored folders of the repo:
#   .whl/  wheels of the packages the machine's image lacks or has in another version (~21 MiB)
#   .gpu/  all-MiniLM-L6-v2 and all-mpnet-base-v2 without their weights (config, tokenizer,
#          modules) and SciFact's corpus, queries and train qrels (~9.5 MiB)
# Then: device run `bash scripts/gpu_check.sh` with carry [".gpu", ".whl"].
# Needs the models in the Hugging Face cache (`make models`) and $WINNOW_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${WINNOW_DATA:?set WINNOW_DATA to the data directory (it holds beir/scifact)}"
HUB=${HF_HOME:-$HOME/.cache/huggingface}/hub
for d in .whl .gpu; do grep -qx "/$d/" .git/info/exclude || echo "/$d/" >>.git/info/exclude; done
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  sentence-transformers==6.2.0 datasets==5.2.0 dill multiprocess faiss-cpu==1.15.1 \
  pytrec-eval-terrier bm25s PyStemmer
for m in all-MiniLM-L6-v2 all-mpnet-base-v2; do
  snap=$(ls -d "$HUB"/models--sentence-transformers--$m/snapshots/*/ | head -1)
  mkdir -p .gpu/models/$m
  (cd "$snap" && find -L . -type f ! -name '*.safetensors' ! -name '*.bin' ! -path './onnx/*' \
    ! -path './openvino/*' ! -name '*.h5' ! -name '*.ot' ! -name '*.msgpack') | while read -r f; do
    mkdir -p ".gpu/models/$m/$(dirname "$f")"
    cp -L "$snap/$f" ".gpu/models/$m/$f"
  done
done
mkdir -p .gpu/data/beir/scifact/qrels
cp "$WINNOW_DATA"/beir/scifact/{corpus,queries}.jsonl .gpu/data/beir/scifact/
cp "$WINNOW_DATA"/beir/scifact/qrels/train.tsv .gpu/data/beir/scifact/qrels/
du -sh .whl .gpu
