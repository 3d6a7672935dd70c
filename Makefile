# Winnow: set-up and entry points. Every target does its own set-up on a fresh machine.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# Models come from the seeded Hugging Face cache (`winnow models install-offline`); set
# HF_HUB_OFFLINE=0 on a machine that reaches the hub.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export WINNOW_DATA ?= $(abspath ../shared/data)
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup models demo test test-slow lint bench sparse ablation

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

models: setup
	$(BIN)/winnow models install-offline

# The main job on the embedded default: train the full dense recipe briefly on SciFact train (200
# queries, 2 epochs), then index and evaluate the base and the trained model on SciFact test.
DEMO := runs/demo
demo: models
	$(BIN)/winnow train configs/dense-full.yaml --output $(DEMO)/dense-full \
		--set data.max_queries=200 --set training.epochs=2
	$(BIN)/winnow eval beir --model sentence-transformers/all-MiniLM-L6-v2 --data scifact --split test \
		--output $(DEMO)/scifact-base.json
	$(BIN)/winnow eval beir --model $(DEMO)/dense-full --data scifact --split test \
		--output $(DEMO)/scifact-dense-full.json
	$(BIN)/winnow eval table $(DEMO)/scifact-base.json $(DEMO)/scifact-dense-full.json
	$(BIN)/winnow eval compare $(DEMO)/scifact-base.json $(DEMO)/scifact-dense-full.json

# The fast suite sees an empty Hugging Face cache: a test that reaches for a hub model fails here,
# not only on a machine that never seeded one.
test: setup
	HF_HOME=$(abspath .cache/hf-empty) $(BIN)/python -m pytest -q

test-slow: models
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: models
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	$(BIN)/python bench/search_speed.py --json runs/bench/search_speed.json
	$(BIN)/python bench/train_speed.py --json runs/bench/train_speed.json
	$(BIN)/python bench/encode_speed.py --chunk 512 --work runs/bench/onnx --json runs/bench/encode_speed.json
	$(MAKE) sparse

# The sparse recipe: an untrained inference-free SPLADE-tiny (IDF query side) and the trained one on
# SciFact and NFCorpus test through both inverted indexes beside BM25, then search speed.
# Both read 512 document tokens (configs/sparse-full.yaml, sparse.max_length).
SPARSE := runs/models/sparse-full
UNTRAINED := runs/models/splade-tiny-idf-512
sparse: models
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	test -d $(UNTRAINED) || $(BIN)/winnow models inference-free --base rasyosef/splade-tiny \
		--idf-corpus scifact --idf-corpus nfcorpus --max-length 512 --output $(UNTRAINED)
	test -d $(SPARSE) || $(BIN)/winnow train configs/sparse-full.yaml --output $(SPARSE)
	test -d $(SPARSE)-pruned || $(BIN)/winnow models prune --model $(SPARSE) --doc-max-terms 128 \
		--query-min-idf 1.0 --output $(SPARSE)-pruned
	$(BIN)/python bench/sparse_quality.py --model $(UNTRAINED) --model $(SPARSE) \
		--model $(SPARSE)-pruned --datasets scifact nfcorpus --json runs/bench/sparse_quality.json
	$(BIN)/python bench/sparse_search.py --model $(SPARSE) --json runs/bench/sparse_search.json
	$(BIN)/python bench/sparse_search.py --model $(SPARSE)-pruned --synthetic-docs 20000 --no-seismic \
		--json runs/bench/sparse_search_pruned.json

# The dense ablation tables of the README (hours on 2 CPU cores; results are reused when present):
# SciFact at 2 epochs, NFCorpus at the configs' 3 (chosen on its dev split in session 22).
ablation: models
	$(BIN)/python bench/train_ablation.py --datasets scifact --set training.epochs=2 \
		--json runs/ablation/scifact.json
	$(BIN)/python bench/train_ablation.py --datasets nfcorpus --out runs/ablation-nfcorpus-3ep \
		--json runs/ablation-nfcorpus-3ep/nfcorpus.json
