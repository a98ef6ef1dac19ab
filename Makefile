# Two commands do all set-up on a fresh machine:  make bench  (the main job)  and  make test.
# The install uses the exact versions in requirements/lock.txt; `make lock` refreshes that file.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt
PIP_VERSION := 26.3

.PHONY: bench test perf install lock clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install pip==$(PIP_VERSION)
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -c $(LOCK) -e '.[dev]'
	$(BIN)/pip install -c $(LOCK) 'obp==0.4.1' || echo "adsim: obp (Open Bandit Pipeline) could not be installed; the OPE cross-check against it will be skipped"
	touch $(STAMP)

install: $(STAMP)

# Re-resolve every dependency to the newest versions allowed (torch stays at the wheel installed above).
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --upgrade --extra dev --extra ope --strip-extras --no-emit-index-url \
		--no-emit-find-links -c requirements/lock-pins.txt -o $(LOCK) pyproject.toml
	sed -i 's/^torch==\(.*\)+cpu$$/torch==\1/' $(LOCK)

bench: $(STAMP)
	$(BIN)/adsim bench --config experiments/configs/default.toml --out results/default --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q

perf: $(STAMP)
	$(BIN)/adsim perf $(if $(wildcard models/generator/model.pt),--generator-model models/generator)

clean:
	rm -rf $(VENV) build *.egg-info
