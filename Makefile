# Winnow: set-up and entry points. Every target does its own set-up on a fresh machine.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# Models come from the seeded Hugging Face cache (`winnow models install-offline`); set
# HF_HUB_OFFLINE=0 on a machine that reaches the hub. Data sets come from the data root, resolved
# by the CLI (--data-dir, $WINNOW_DATA, ./data, ../shared/data; docs/evaluation.md).
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
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

# The main job on the embedded default, stage by stage: SciFact into the data root (downloaded when
# absent), train configs/demo.yaml (the full recipe's components at demo scale), index SciFact's
# corpus with the trained model (FAISS Flat), search it, score the saved index and the base model on
# SciFact test, and print both side by side with the paired test. Documents are read at 128 tokens
# so that a cold run fits in minutes on two CPU cores.
DEMO := runs/demo
BASE := sentence-transformers/all-MiniLM-L6-v2
demo: models
	rm -rf $(DEMO)
	@echo "== 1/6 data: SciFact in the data root"
	$(BIN)/winnow data fetch scifact
	@echo "== 2/6 train: configs/demo.yaml on 200 SciFact training queries"
	$(BIN)/winnow train configs/demo.yaml --output $(DEMO)/dense-demo
	@echo "== 3/6 index: SciFact's corpus with the trained model"
	$(BIN)/winnow index --model $(DEMO)/dense-demo --corpus scifact --max-length 128 \
		--output $(DEMO)/index-dense-demo
	@echo "== 4/6 search the saved index"
	$(BIN)/winnow search --index-dir $(DEMO)/index-dense-demo -k 3 \
		--query "vitamin D supplementation lowers the risk of fractures"
	@echo "== 5/6 evaluate on SciFact test: the saved index, then the base model"
	$(BIN)/winnow eval beir --index-dir $(DEMO)/index-dense-demo --data scifact --split test \
		--output $(DEMO)/scifact-dense-demo.json
	$(BIN)/winnow eval beir --model $(BASE) --max-length 128 --data scifact --split test \
		--output $(DEMO)/scifact-base.json
	@echo "== 6/6 base against trained, query by query"
	$(BIN)/winnow eval table $(DEMO)/scifact-base.json $(DEMO)/scifact-dense-demo.json
	$(BIN)/winnow eval compare $(DEMO)/scifact-base.json $(DEMO)/scifact-dense-demo.json

# The fast suite sees an empty Hugging Face cache: a test that reaches for a hub model fails here,
# not only on a machine that never seeded one.
test: setup
	HF_HOME=$(abspath .cache/hf-empty) $(BIN)/python -m pytest -q

test-slow: models
	$(BIN)/python -m pip install -q -e ".[dev,ray]"
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# The product benchmarks (docs/results.md: search, encode and train speed, then the sparse ones);
# each prints its table and writes runs/bench/NAME.json.
bench: models
	$(BIN)/python -m pip install -q -e ".[dev,bench]"
	$(BIN)/python -m bench.search_speed --json runs/bench/search_speed.json
	$(BIN)/python -m bench.train_speed --json runs/bench/train_speed.json
	$(BIN)/python -m bench.encode_speed --chunk 512 --work runs/bench/onnx --json runs/bench/encode_speed.json
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
	$(BIN)/python -m bench.sparse_quality --model $(UNTRAINED) --model $(SPARSE) \
		--model $(SPARSE)-pruned --datasets scifact nfcorpus --json runs/bench/sparse_quality.json
	$(BIN)/python -m bench.sparse_search --model $(SPARSE) --json runs/bench/sparse_search.json
	$(BIN)/python -m bench.sparse_search --model $(SPARSE)-pruned --synthetic-docs 20000 --no-seismic \
		--json runs/bench/sparse_search_pruned.json

# The dense training ablation of docs/results.md (hours on 2 CPU cores; results are reused when
# present): SciFact at 2 epochs, NFCorpus at the recipes' 3 (chosen on its dev split).
ablation: models
	$(BIN)/python -m experiments.train_ablation --datasets scifact --set training.epochs=2 \
		--json runs/ablation/scifact.json
	$(BIN)/python -m experiments.train_ablation --datasets nfcorpus --out runs/ablation-nfcorpus-3ep \
		--json runs/ablation-nfcorpus-3ep/nfcorpus.json
