# sparc: `make demo` runs the shop example, `make test` runs the tests.
# Both create .venv and install what they need on a fresh machine.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DEMO_DIR ?= .demo/shop

.PHONY: install demo test lint format fidelity bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "sparc needs Python 3.11 or newer (found $(PYTHON))"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	@rm -rf $(DEMO_DIR) && mkdir -p $(dir $(DEMO_DIR))
	@cp -R examples/shop $(DEMO_DIR)
	$(BIN)/sparc init $(DEMO_DIR)
	$(BIN)/sparc -C $(DEMO_DIR) batch
	@echo
	$(BIN)/sparc -C $(DEMO_DIR) backlog
	@echo
	git -C $(DEMO_DIR) log --stat --format='%h %s%n%n%b'

test: $(STAMP)
	$(BIN)/python -m pytest

fidelity: $(STAMP)
	$(BIN)/python scripts/fidelity.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

docs: $(STAMP)
	$(BIN)/python scripts/cli_docs.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf .demo build dist *.egg-info .pytest_cache .ruff_cache
