# Two commands do all set-up on a fresh machine:  make bench  (the main job)  and  make test.
# The install uses the exact versions in requirements/lock.txt (`make lock` refreshes that file),
# then trains the default creative generator into models/generator (once; see $(GENERATOR) below).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt
PIP_VERSION := 26.3

GENERATOR := models/generator

.PHONY: bench test perf install lock clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install pip==$(PIP_VERSION)
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -c $(LOCK) -e '.[dev]'
	$(BIN)/pip install -c $(LOCK) 'obp==0.4.1' || echo "adsim: obp (Open Bandit Pipeline) could not be installed; the OPE cross-check against it will be skipped"
	touch $(STAMP)

# The default creative generator (the default recipe of `adsim train-generator`: DEFAULT_RECIPE in
# experiments/commands/train_generator.py), trained deterministically, about 2.5 min on 2 cores.
# --if-current skips the training when the saved config.json records this very recipe (options,
# world fingerprint, training code); make runs that check only when a source file is newer than
# models/generator/config.json (so a generator you trained there yourself stays until then; the
# command itself, run by hand, always restores the default).
$(GENERATOR)/config.json: $(STAMP) $(shell find adsim experiments/commands -name '*.py' 2>/dev/null)
	$(BIN)/adsim train-generator --out $(GENERATOR) --if-current > /dev/null
	touch $@

install: $(STAMP) $(GENERATOR)/config.json

# Re-resolve every dependency to the newest versions allowed (torch stays at the wheel installed above).
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --upgrade --extra dev --extra ope --strip-extras --no-emit-index-url \
		--no-emit-find-links -c requirements/lock-pins.txt -o $(LOCK) pyproject.toml
	sed -i 's/^torch==\(.*\)+cpu$$/torch==\1/' $(LOCK)

bench: install
	$(BIN)/adsim bench --config experiments/configs/default.toml --out results/default --overwrite

test: install
	$(BIN)/python -m pytest -q

perf: install
	$(BIN)/adsim perf --generator-model $(GENERATOR)

clean:
	rm -rf $(VENV) build *.egg-info
