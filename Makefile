# Two commands do everything on a fresh clone: `make demo` and `make test`.
# Both create the virtual environment and install Pactum into it when needed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.pactum-installed

.PHONY: setup demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/pactum demo

lint: setup
	$(BIN)/ruff check connector policies identity tests bench

typecheck: setup
	$(BIN)/mypy connector policies identity

unit: setup
	bash scripts/ensure-system-packages.sh
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck unit

bench: setup
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
