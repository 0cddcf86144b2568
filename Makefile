# One entry point for people and CI. Every target installs what it needs first (idempotent, quick when done).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN    := HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(PY)

# Extra Hydra overrides for train/eval/sweep, e.g. make train ARGS="reward=max reward.alpha=0.0003"
ARGS  ?=
SWEEP ?= alpha
MODEL ?= outputs/demo/model

.PHONY: install test test-fast demo train eval sweep report bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

test: install
	$(RUN) -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(RUN) -m pytest -q -m "not slow" $(PYTEST_ARGS)

demo: install
	$(RUN) -m lcpo.demo $(ARGS)

train: install
	$(RUN) -m lcpo.train $(ARGS)

eval: install
	$(RUN) -m lcpo.evaluate "models=[$(MODEL)]" $(ARGS)

sweep: install
	$(RUN) -m lcpo.train -m +sweep=$(SWEEP) $(ARGS)

# the newest run of $(SWEEP) unless DIR=multirun/<sweep>/<date> is given
report: install
	$(RUN) -m lcpo.report $(or $(DIR),$(shell ls -dt multirun/$(SWEEP)/*/ 2>/dev/null | head -n 1))

bench: install
	$(RUN) -m lcpo.bench $(ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
