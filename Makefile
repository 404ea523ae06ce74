# vigil — two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
SHARED ?= ../shared
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench conformance clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11+)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@rm -rf .vigil/demo && mkdir -p .vigil/demo && cp -r examples/agent-fleet .vigil/demo/workspace
	$(VENV)/bin/vigil check --workspace .vigil/demo/workspace
	$(VENV)/bin/vigil replay --workspace .vigil/demo/workspace \
		--input examples/agent-fleet/events.jsonl --output .vigil/demo/decisions.jsonl
	@echo "decisions: .vigil/demo/decisions.jsonl   audit: .vigil/demo/workspace/.vigil/audit.jsonl"
	$(PY) examples/agent-fleet/behaviour_demo.py --workdir .vigil/demo/behaviour
	@VENV=$(VENV) bash examples/authzen-todo/demo.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples
	$(VENV)/bin/ruff format --check src tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src/vigil

unit: $(STAMP)
	$(PY) -m pytest

test: lint typecheck unit

conformance: $(STAMP)
	$(PY) tests/cedar_corpus.py

bench: $(STAMP)
	$(PIP) install -q -e '.[dev,bench]'
	mkdir -p bench/results
	$(PY) $(SHARED)/bench/peers_bench.py --engines python-reference,cedarpy,tollgate,vigil \
		--out bench/results/peers.json
	$(PY) $(SHARED)/bench/peers_bench.py --engines python-reference,vigil --check \
		--out bench/results/check.json

clean:
	rm -rf $(VENV) .vigil .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: eval
eval: $(STAMP)
	$(VENV)/bin/vigil eval --holdout 3 --datasets $(SHARED)/datasets --json-out eval/results.json --update-doc docs/detection.md
