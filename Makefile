# gcsa-fer: every target sets up .venv itself when it is missing or out of date.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test sync-check nbtest pytest docs docs-check lab ablation report bench screenshots offline-wheels offline-check

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

# The library must be what the notebooks export, and the notebooks must be clean.
sync-check: $(STAMP)
	@snap() { find gcsa_fer nbs -type f \( -name '*.py' -o -name '*.ipynb' \) -not -path '*/.ipynb_checkpoints/*' -print0 | sort -z | xargs -0 md5sum; }; \
	before=$$(snap); $(BIN)/nbdev_export; after=$$(snap); \
	if [ "$$before" != "$$after" ]; then echo "nbdev_export changed gcsa_fer/: the library is out of sync with nbs/. Review, then commit the export."; diff <(echo "$$before") <(echo "$$after"); exit 1; fi; \
	$(BIN)/nbdev_clean; $(BIN)/nbdev_clean --fname nbs/experiments; after2=$$(snap); \
	if [ "$$after" != "$$after2" ]; then echo "nbdev_clean changed nbs/: the notebooks were not clean. Review, then commit them."; diff <(echo "$$after") <(echo "$$after2"); exit 1; fi; \
	echo "sync-check: library and notebooks in sync, notebooks clean"

# two notebooks run at once on the two cores: one thread each, or they fight over the cores
nbtest: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2

pytest: $(STAMP)
	$(BIN)/pytest -q tests

test: sync-check nbtest pytest

docs: $(STAMP)
	$(PY) tools/build_docs.py

docs-check: docs
	$(PY) tools/build_docs.py --check-only

# the report is written even when some runs failed; the exit status still says they did
ablation: $(STAMP)
	@$(BIN)/gcsa_fer ablate --preset $(PRESET) --out runs/$(PRESET) $(ABLATE_ARGS); status=$$?; \
	$(MAKE) report || exit 1; exit $$status

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

# the explorer in JupyterLab, driven by headless Chromium (needs: apt-get install chromium)
screenshots: $(STAMP)
	$(PY) tools/lab_screenshots.py

lab: $(STAMP)
	$(BIN)/jupyter lab nbs
