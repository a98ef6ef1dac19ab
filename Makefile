# Two commands do all set-up on a fresh machine:  make bench  (the main job)  and  make test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench test perf install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

bench: $(STAMP)
	$(BIN)/adsim bench --config experiments/configs/default.toml --out results/default --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q

perf: $(STAMP)
	$(BIN)/adsim perf

clean:
	rm -rf $(VENV) build *.egg-info
