# Each public target does its own set-up: a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit goldens bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	cd examples/bank && ../../$(BIN)/esgen generate
	cd examples/bank && ../../$(BIN)/python demo.py

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

unit: $(STAMP)
	$(BIN)/pytest -q

# Rewrite the expected output of every golden case (generator, docs, compat) and the
# examples' generated code and catalogs; review the diff like any other change.
goldens: $(STAMP)
	$(BIN)/python tests/regenerate_goldens.py
	$(BIN)/python tests/docs/regenerate_goldens.py
	$(BIN)/python tests/compat/regenerate.py
	for d in examples/*/; do (cd $$d && ../../$(BIN)/esgen generate && ../../$(BIN)/esgen docs); done

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache
