# Quick start: `make run` (main job on the embedded synthetic data), `make test` (test suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test prepare clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run.py --config configs/global.py

prepare: $(STAMP)
	$(BIN)/python scripts/prepare_data.py --config configs/global.py

test: $(STAMP)
	$(BIN)/python -m pytest tests -n 2 --dist loadgroup

clean:
	rm -rf $(VENV) results
