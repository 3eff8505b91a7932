# Each public target does its own set-up: a fresh clone needs nothing but python3.
PYTHON ?= python3
# `make test-lowest` sets both: a second venv, with every dependency at the lowest version
# pyproject.toml allows (a constraints file) instead of the newest.
VENV ?= .venv
CONSTRAINTS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-personal-data demo-services test test-lowest lint typecheck unit goldens fuzz bench faults dist clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(if $(CONSTRAINTS),--constraint $(CONSTRAINTS)) \
		-e '.[generator,postgres,nats,pii,testing]' --group dev
	touch $(STAMP)

demo: $(STAMP)
	cd examples/bank && ../../$(BIN)/esgen generate
	cd examples/bank && ../../$(BIN)/python demo.py

# Personal data: customers and orders on a SQLite file, one customer forgotten
# (crypto-shredding), then what reads as placeholders and what the file's bytes hold.
demo-personal-data: $(STAMP)
	cd examples/customers && ../../$(BIN)/esgen generate
	cd examples/customers && ../../$(BIN)/python demo.py

# Two services as separate processes over NATS JetStream (ESGEN_NATS_SERVERS, default the
# local server at 127.0.0.1:4222): the bank's relay publishes, the statements' consumer reads.
demo-services: $(STAMP)
	cd examples/bank && ../../$(BIN)/esgen generate
	cd examples/statements && ../../$(BIN)/esgen generate
	cd examples/statements && ../../$(BIN)/python demo.py

test: lint typecheck unit

# The same checks with the lowest allowed versions of esgen's dependencies.
test-lowest:
	$(MAKE) test VENV=.venv-lowest CONSTRAINTS=.ci/lowest-constraints.txt

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# The official AsyncAPI parser, pinned by tests/asyncapi/package-lock.json, for the tests
# that read the AsyncAPI documents `esgen docs` writes (they skip without node, fail in CI).
NPM_STAMP := tests/asyncapi/node_modules/.installed

$(NPM_STAMP): tests/asyncapi/package.json tests/asyncapi/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/asyncapi --no-audit --no-fund --ignore-scripts && touch $(NPM_STAMP); \
	else \
		echo "npm is missing: the AsyncAPI parser tests will skip (they fail in CI)"; \
	fi

unit: $(STAMP) $(NPM_STAMP)
	$(BIN)/pytest -q

# Rewrite the expected output of every golden case (generator, docs, compat) and the
# examples' generated code and catalogs; review the diff like any other change.
goldens: $(STAMP)
	$(BIN)/python tests/regenerate_goldens.py
	$(BIN)/python tests/docs/regenerate_goldens.py
	$(BIN)/python tests/compat/regenerate.py
	for d in examples/*/; do (cd $$d && ../../$(BIN)/esgen generate && ../../$(BIN)/esgen docs); done
	# After the examples: the bank demo's store is what `esgen inspect` is shown on.
	ESGEN_UPDATE_GOLDENS=1 $(BIN)/pytest -q -p no:randomly tests/inspect/test_inspect_demo.py -k golden

# The schema fuzzer at length: FUZZ_COUNT schemas (default 20000) from FUZZ_SEED, over
# FUZZ_JOBS worker processes; failures (shrunk to minimal reproducers) land in fuzz-failures/.
# `make test` runs a short seeded campaign of the same fuzzer (tests/fuzz/test_schema_fuzz.py).
fuzz: $(STAMP)
	$(BIN)/python tests/fuzz/run_fuzz.py

bench: $(STAMP)
	$(BIN)/pip install --quiet --group bench
	$(BIN)/python benchmarks/run_all.py --readme README.md

# Kill -9 writers, readers, projection and saga runners (and, on PostgreSQL, end their
# sessions server-side), then count lost, duplicated and skipped events: 200 kills per
# backend by default; FAULTS_ARGS="--kills 10" for a shorter run (see tests/faults/run.py).
faults: $(STAMP)
	$(BIN)/python -m tests.faults.run $(FAULTS_ARGS)

# The wheel to install elsewhere: dist/esgen-<version>-py3-none-any.whl (needs only pip).
dist:
	rm -f dist/esgen-*.whl
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir dist .

clean:
	rm -rf .venv .venv-lowest build dist .mypy_cache .pytest_cache .ruff_cache
