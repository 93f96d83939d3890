# genlab: `make demo` and `make test` work from a fresh clone (they build the venv first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GENLAB := $(VENV)/bin/genlab
# torch first, the version pinned here: anything that depends on torch must find it installed.
# scripts/install_torch.sh picks the build: CUDA with an NVIDIA GPU, else the CPU build (never PyPI's multi-GB
# Linux CUDA build on a machine without a GPU); TORCH_INDEX=URL forces an index (e.g. PyTorch's cu126 one).
TORCH_SPEC ?= torch==2.13.0
# an index to take torch from (empty: scripts/install_torch.sh decides), e.g. https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
PYTEST_ARGS ?=
# Exact versions of everything else (torch's build is TORCH_SPEC's choice, so the locks leave torch out).
# pyproject.toml keeps version ranges for library users; refresh the locks with `make lock`.
BASE_LOCK := requirements/base.lock
DEV_LOCK := requirements/dev.lock

.PHONY: install dev demo test lint data bench clean lock

$(VENV)/.base: pyproject.toml $(BASE_LOCK) Makefile scripts/install_torch.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	TORCH_SPEC="$(TORCH_SPEC)" TORCH_INDEX="$(TORCH_INDEX)" bash scripts/install_torch.sh $(PY)
	$(PY) -m pip install -q -r $(BASE_LOCK)
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $@

$(VENV)/.dev: $(VENV)/.base $(DEV_LOCK) requirements/reference.txt
	$(PY) -m pip install -q -r $(DEV_LOCK)
	$(PY) -m pip check
	# clean-fid's and pytorch-fid's wheels, read by the metric tests (they need torchvision: not installed)
	$(PY) -m pip download -q --no-deps --require-hashes -r requirements/reference.txt -d $(VENV)/reference
	touch $@

# Re-resolve both locks from pyproject.toml against the torch installed in the venv (one command).
lock: $(VENV)/.base
	$(PY) -m pip install -q pip-tools
	$(PY) -c "import torch; print('torch==' + torch.__version__)" > requirements/.torch-constraint
	CUSTOM_COMPILE_COMMAND="make lock" $(PY) -m piptools compile -q --upgrade --strip-extras --no-emit-index-url --no-emit-find-links \
	  -c requirements/.torch-constraint -o $(BASE_LOCK) pyproject.toml
	CUSTOM_COMPILE_COMMAND="make lock" $(PY) -m piptools compile -q --upgrade --strip-extras --no-emit-index-url --no-emit-find-links \
	  --extra dev --extra ray -c requirements/.torch-constraint -c $(BASE_LOCK) -o $(DEV_LOCK) pyproject.toml
	sed -i '/^torch==/d' $(BASE_LOCK) $(DEV_LOCK)
	rm -f requirements/.torch-constraint

install: $(VENV)/.base
dev: $(VENV)/.dev

# Fashion-MNIST: a local copy, else the official download, else Debian's package (needs apt and root).
data: install
	@$(GENLAB) datasets prepare fashion-mnist --no-download >/dev/null 2>&1 || \
	 $(GENLAB) datasets prepare fashion-mnist >/dev/null 2>&1 || \
	 { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	   { apt-get install -y -q dataset-fashion-mnist || { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; }; } ; } ; \
	 $(GENLAB) datasets prepare fashion-mnist --no-download

# install, data, training, evaluation (classifier FID, class coverage), report: each stage timed (scripts/demo.sh)
demo:
	MAKE="$(MAKE)" bash scripts/demo.sh

# ruff (lint), import-linter (the layer contract in pyproject.toml) and mypy (types; [tool.mypy] there) before
# the tests: a cycle or a type error fails CI
lint: dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# the system packages the tests need (Chromium, Debian's Fashion-MNIST, ...: the list is in the script), installed
# with apt when run as root, else one line naming them and the install command, before anything else
.PHONY: test-setup
test-setup:
	@bash scripts/test_setup.sh

test: test-setup lint
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache

# Mutation testing (mutmut) of the modules where a silent mistake costs users most, each against its own fast
# tests (scripts/mutate.py; docs/contributing.md). Long (an hour or more on 2 cores) and not part of `make test`;
# MUTATE_ARGS picks modules or a sample, e.g. MUTATE_ARGS="io fid --sample 3".
MUTMUT_SPEC ?= mutmut==3.8.1
MUTATE_ARGS ?=
.PHONY: mutate
mutate: dev
	$(PY) -m pip install -q "$(MUTMUT_SPEC)"
	$(PY) -m pip check
	nice -n 15 $(PY) scripts/mutate.py $(MUTATE_ARGS)
