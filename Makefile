# Two commands matter: `make run` and `make test`. Everything else is on top of `make install`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1

.PHONY: install browser run train test bench clean

install: $(STAMP)

# torch is pinned and installed first: a bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

models/nlu/checkpoint.json: | $(STAMP)
	OMP_NUM_THREADS=2 $(VENV)/bin/slmbot train

train: install
	OMP_NUM_THREADS=2 $(VENV)/bin/slmbot train

run: install models/nlu/checkpoint.json
	$(VENV)/bin/slmbot run

# The widget tests drive Debian's Chromium through Playwright (never `playwright install`: it downloads).
browser:
	@command -v chromium >/dev/null || { test "$$(id -u)" = 0 && { apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }; } \
		|| echo "chromium is not installed and this is not root: the browser tests will be skipped"

test: install browser
	$(PY) -m pytest -q

# Heavy: trains on SNIPS, ATIS, CamRest676 and Taskmaster-4 (about two hours on 2 CPU cores). Results land in bench/results/
bench: install
	$(PIP) install -q -e '.[dev,bench]'
	$(PY) -m bench.nlu
	$(PY) -m bench.pretraining
	$(PY) -m bench.generator
	test -f models/nlu/checkpoint.json || OMP_NUM_THREADS=2 $(VENV)/bin/slmbot train
	$(PY) -m bench.serve
	$(PY) -m bench.pii
	$(PY) -m bench.learning
	@if $(PY) -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then \
		$(PY) -m bench.gpu; else echo "no CUDA device: skipping bench.gpu (python -m bench.gpu --tiny runs on CPU)"; fi

clean:
	rm -rf $(VENV) models .pytest_cache
