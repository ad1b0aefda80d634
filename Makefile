# The two commands of the README: `make run` (environment + the main federated job) and `make test`.
# torch is installed first, on its own: the pinned release resolves to a CPU build where a local wheel provides one,
# and a later resolver run then keeps it instead of pulling a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER ?= 0

.PHONY: install run test lint bench clean

$(BIN)/fedray: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/fedray

install: $(BIN)/fedray

run: install
	$(BIN)/fedray run federated server.rounds=10

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python benchmarks/fl_overhead.py

clean:
	rm -rf $(VENV) runs build *.egg-info
