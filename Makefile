# The two commands a newcomer needs: `make run` and `make test`.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
UV_BOOTSTRAP := uv==0.13.9

.PHONY: install run test lint typecheck unit integration e2e bench clean

install: $(STAMP)

# Rebuilt only when the project or lock file changes; otherwise a no-op.
$(STAMP): pyproject.toml uv.lock
	test -x $(BIN)/python || python3 -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check "$(UV_BOOTSTRAP)"
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --locked --quiet --python $(BIN)/python
	touch $(STAMP)

run: install
	$(BIN)/modelyard serve

test: install lint typecheck
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

e2e: install
	$(BIN)/pytest tests/e2e

bench: install
	$(BIN)/python bench/registry.py
	$(BIN)/python bench/images.py
	$(BIN)/python bench/scoring.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
