# vigil — two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# The shared speed benchmark lives outside the repository (only `make bench` reads it); the data the
# tests and `make eval` read is vendored under vendor/ (vendor/README.md).
SHARED ?= ../shared
DATASETS ?= vendor/datasets
STAMP  := $(VENV)/.installed
PURE_TESTS ?= tests/test_differential.py tests/test_cedar_conformance.py tests/test_behaviour_model.py \
	tests/test_behaviour_engine.py tests/test_behaviour_detection.py tests/test_behaviour_golden.py tests/test_audit_sink.py tests/test_bad_input.py \
	tests/test_extensions.py tests/test_compiled.py tests/test_audit_chain.py tests/test_audit_failures.py tests/test_audit_shared_log.py tests/test_audit_verify.py \
	tests/test_overlay.py tests/test_timefmt.py tests/test_approvals.py tests/test_batch_failures.py tests/test_pep_view.py \
	tests/test_identity_engine.py tests/test_pipeline.py tests/test_ext_authz_client.py tests/test_token_service.py \
	tests/test_learning_graded.py tests/test_sessions_peers.py tests/test_cross_identity.py tests/test_credential_misuse.py \
	tests/test_tool_behaviour.py tests/test_delegated_behaviour.py tests/test_credential_two_places.py tests/test_learned_groups.py \
	tests/test_escalation_reach.py

.PHONY: demo test lint typecheck unit unit-pure build bench conformance clean fuzz

$(STAMP): pyproject.toml setup.py
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (Python 3.11+)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# VIGIL_PURE=1: the editable install would compile the hot path in a throwaway build directory
	# (its extensions do not land in src/); `make build` compiles it once, in place.
	VIGIL_PURE=1 $(PIP) install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The compiled hot path (setup.py, src/vigil/compiled.py): incremental, so a no-op (~1 s) unless a
# hot module or its .pxd changed since the last build.
build: $(STAMP)
	$(PY) setup.py -q build_ext --inplace 2>&1 | grep -Ev '^(copying|gcc|creating)|BetaConfiguration|warnings.warn' || true
	@# an extension of a module no longer compiled would shadow its .py: remove it
	@$(PY) -c "import pathlib, runpy; c = runpy.run_path('src/vigil/compiled.py'); keep = set(c['HOT_MODULES'] + c['C_MODULES']); [p.unlink() for p in pathlib.Path('src').rglob('*.so') if '.'.join(p.relative_to('src').with_name(p.name.split('.')[0]).parts) not in keep]"

demo: build
	@rm -rf .vigil/demo && mkdir -p .vigil/demo && cp -r examples/agent-fleet .vigil/demo/workspace
	$(VENV)/bin/vigil check --workspace .vigil/demo/workspace
	$(VENV)/bin/vigil replay --workspace .vigil/demo/workspace \
		--input examples/agent-fleet/events.jsonl --output .vigil/demo/decisions.jsonl \
		--audit .vigil/demo/replay-audit.jsonl
	@echo "decisions: .vigil/demo/decisions.jsonl   audit (marked replay): .vigil/demo/replay-audit.jsonl"
	$(VENV)/bin/vigil audit verify .vigil/demo/replay-audit.jsonl --public-key .vigil/demo/replay-audit.jsonl.signing.pub
	$(PY) examples/agent-fleet/behaviour_demo.py --workdir .vigil/demo/behaviour
	$(PY) examples/delegation/demo.py --workdir .vigil/demo/delegation
	@VENV=$(VENV) bash examples/agent-fleet/escalation_demo.sh
	$(PY) examples/mcp-agent/demo.py --workdir .vigil/demo/mcp-agent
	@VENV=$(VENV) bash examples/authzen-todo/demo.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src/vigil

unit: build
	$(PY) -m pytest

# The same code without the compiled modules: the decision, behaviour and audit tests against a copy
# of the sources that has no extension modules in it.
unit-pure: $(STAMP)
	rm -rf .vigil/pure-src && mkdir -p .vigil && cp -r src .vigil/pure-src
	find .vigil/pure-src -name '*.so' -delete
	VIGIL_PURE=1 PYTHONPATH=.vigil/pure-src $(PY) -m pytest $(PURE_TESTS)

test: lint typecheck unit unit-pure

conformance: $(STAMP)
	$(PY) tests/cedar_corpus.py

# The differential tests (vigil vs cedarpy) with random seeds for FUZZ_SECONDS; prints the seed and a
# ready-to-paste test for any counterexample (tests/fuzz.py). CI runs them derandomized in `make unit`.
FUZZ_SECONDS ?= 300
fuzz: build
	$(PY) tests/fuzz.py --seconds $(FUZZ_SECONDS)

# the peers, then the compiled hot path in place (as for every other target)
bench: $(STAMP)
	VIGIL_PURE=1 $(PIP) install -q -e '.[dev,bench]'
	$(MAKE) build
	mkdir -p bench/results
	@echo "shared benchmark: $(SHARED)/bench (override with SHARED=...)"
	@test -f $(SHARED)/bench/peers_bench.py || { echo "no $(SHARED)/bench/peers_bench.py: the benchmark is not vendored; set SHARED=<folder holding bench/>"; exit 1; }
	$(PY) $(SHARED)/bench/peers_bench.py --engines python-reference,cedarpy,tollgate,vigil \
		--out bench/results/peers.json
	$(PY) $(SHARED)/bench/peers_bench.py --engines python-reference,vigil --check \
		--out bench/results/check.json

clean:
	rm -rf $(VENV) .vigil .pytest_cache .mypy_cache .ruff_cache .hypothesis build
	find src \( -name '*.so' -o -name '*.c' \) -delete

# Escalation paths scored on the labelled iam-vulnerable snapshot (docs/escalation.md), and their speed.
.PHONY: eval-paths bench-paths
eval-paths: $(STAMP)
	$(PY) -m vigil.evaluation.paths --datasets $(DATASETS) --json-out eval/paths.json --update-doc docs/escalation.md

bench-paths: $(STAMP)
	$(PY) bench/paths.py --json-out bench/results/paths.json

.PHONY: eval
eval: $(STAMP)
	$(VENV)/bin/vigil eval --holdout 3 --datasets $(DATASETS) --json-out eval/results.json --update-doc docs/detection.md
