# genlab: `make demo` and `make test` work from a fresh clone (they build the venv first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GENLAB := $(VENV)/bin/genlab
# torch first, from the CPU wheel pinned here: anything that depends on torch must find it installed.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install dev demo test data bench clean

$(VENV)/.base: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PY) -m pip install -q -e ".[dev,ray]"
	touch $@

install: $(VENV)/.base
dev: $(VENV)/.dev

# Fashion-MNIST: a local copy, else the official download, else Debian's package (needs apt and root).
data: install
	@$(GENLAB) datasets prepare fashion-mnist --no-download >/dev/null 2>&1 || \
	 $(GENLAB) datasets prepare fashion-mnist >/dev/null 2>&1 || \
	 { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	   { apt-get install -y -q dataset-fashion-mnist || { apt-get update -q && apt-get install -y -q dataset-fashion-mnist; }; } ; } ; \
	 $(GENLAB) datasets prepare fashion-mnist --no-download

demo: data
	$(GENLAB) train configs/demo_fashion_mnist_dcgan.yaml --run-dir runs/demo --overwrite
	$(GENLAB) report runs/demo -o runs/demo/report.html

test: dev
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
