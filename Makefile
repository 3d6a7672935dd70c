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

.PHONY: setup models demo test test-slow lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

models: setup
	$(BIN)/winnow models install-offline

# The main job on the embedded default: index SciFact with all-MiniLM-L6-v2 and evaluate it.
demo: models
	$(BIN)/winnow eval beir --model sentence-transformers/all-MiniLM-L6-v2 --data scifact --split test \
		--output runs/demo/scifact-all-MiniLM-L6-v2.json

test: setup
	$(BIN)/python -m pytest -q

test-slow: models
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/search_speed.py --json runs/bench/search_speed.json
