# officenet: photos -> dataset -> trained run -> int8 bundle -> server / Android APK.
# `make help` lists the targets; variables below can be overridden: make train RUN=artifacts/r2
.DEFAULT_GOAL := help
SHELL := /bin/bash

# The Python versions the pinned stack has wheels for (TensorFlow 2.21: 3.11-3.13; pyproject's
# requires-python; tests/test_python_versions.py resolves the lock for each). The first one on
# PATH is used unless PYTHON= names another.
PYTHONS    := python3.11 python3.12 python3.13
ifeq ($(origin PYTHON),undefined)
PYTHON     := $(or $(firstword $(foreach p,$(PYTHONS),$(shell command -v $(p) 2>/dev/null))),python3)
endif
CHECK_PYTHON = $(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null || { \
	  echo "error: officenet needs Python 3.11, 3.12 or 3.13 (the versions TensorFlow 2.21 and the pinned"; \
	  echo "  stack have wheels for); $(PYTHON) is $$($(PYTHON) --version 2>/dev/null || echo 'not found')."; \
	  echo "  Install one of $(PYTHONS), or set PYTHON=/path/to/python3.X"; exit 1; }
VENV       ?= .venv
PY         := $(VENV)/bin/python
DATA       ?= data/office20
RUN        ?= artifacts/run
BUNDLE     ?= artifacts/bundle
APK        ?= artifacts/officenet-demo.apk
HOST       ?= 127.0.0.1
PORT       ?= 8000
GPU        ?= 0
# `make data` runs `python -m training.data $(DATA_SOURCE) --out $(DATA) $(DATA_ARGS)`;
# e.g. DATA_SOURCE=import DATA_ARGS="--from ~/imagenet/train --classes office20-imagenet"
DATA_SOURCE ?= fetch
DATA_ARGS  ?=
# Non-office photos ("not an office object", issue 8), added by `make data` after the office photos
# (`python -m training.data import-others --from $(OTHERS)`): auto = a local folder
# ($OFFICENET_TINY_IMAGENET_OTHERS, else ../shared/datasets/tiny-imagenet-others) if present, else
# every other class of the Tiny ImageNet zip that fetch downloads; or a folder; OTHERS= adds none.
OTHERS     ?= auto
TRAIN_ARGS ?=
EXPORT_ARGS ?=
SERVE_ARGS ?=
BENCH_ARGS ?=
TEST_ARGS  ?=

# tfmot needs Keras 2: every TensorFlow import in this project must see tf_keras.
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONPATH := $(CURDIR)

STAMP := $(VENV)/.officenet-setup-$(GPU)
# Nothing is pip-installed under the generic names bundle/, training/, export/, server/: the
# checkout is put on the venv's path (a .pth file), so `$(PY) -m training.train` works from any folder.
LINK_CHECKOUT = echo "$(CURDIR)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/officenet.pth"

.PHONY: help setup setup-serve setup-android data train export serve apk bench lint test test-fast clean

help:
	@echo "make setup             create $(VENV) with the pinned stack (GPU=1: CUDA build of TensorFlow)"
	@echo "make data              build the dataset at DATA=$(DATA) (default source: Tiny ImageNet office20)"
	@echo "make train             train into RUN=$(RUN)            (TRAIN_ARGS='--epochs 30 ...')"
	@echo "make export            prune, int8, parity gate, publish BUNDLE=$(BUNDLE)"
	@echo "make serve             HTTP classifier on HOST=$(HOST) PORT=$(PORT)"
	@echo "make apk               signed Android demo APK at $(APK)"
	@echo "make bench             benchmarks, results in bench/results/"
	@echo "make test              lint + the whole test suite (what CI runs); make test-fast skips slow tests"

setup: $(STAMP)

$(STAMP): requirements/serve.txt requirements/train.txt requirements/dev.txt requirements/constraints.txt
	@$(CHECK_PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/dev.txt -c requirements/constraints.txt
	$(LINK_CHECKOUT)
ifeq ($(GPU),1)
	$(PY) -m pip install -q "tensorflow[and-cuda]==2.21.0"
endif
	touch $@

# A serving-only environment (no TensorFlow): for a machine that only runs `make serve`.
setup-serve:
	@test -x $(PY) || $(CHECK_PYTHON)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements/serve.txt -c requirements/constraints.txt
	$(LINK_CHECKOUT)

# System tools for the APK build and the browser tests (apt + npm, idempotent).
setup-android:
	bash android_demo/setup.sh

data: setup
	$(PY) -m training.data $(DATA_SOURCE) --out $(DATA) $(DATA_ARGS)
	$(PY) -m training.data import-others --from "$(or $(OTHERS),none)" --out $(DATA)

# The default dataset is made on demand so that `make setup train export` works on a fresh
# machine; a dataset somewhere else must be made explicitly.
$(DATA)/dataset.json:
	@if [ "$(DATA)" != "data/office20" ]; then \
	  echo "error: no dataset at $(DATA) (missing $(DATA)/dataset.json)."; \
	  echo "  make one with: make data DATA=$(DATA) DATA_SOURCE=import DATA_ARGS='--from /path/to/images'"; exit 1; fi
	$(MAKE) data

train: setup $(DATA)/dataset.json
	$(PY) -m training.train --data $(DATA) --out $(RUN) $(TRAIN_ARGS)

export: setup
	@test -f $(RUN)/model.keras || { echo "error: no trained run at $(RUN) (missing $(RUN)/model.keras). Make one with: make train RUN=$(RUN)"; exit 1; }
	$(PY) -m export --run $(RUN) --out $(BUNDLE) $(EXPORT_ARGS)

serve:
	@test -x $(PY) || { echo "error: no $(VENV). Run: make setup (or make setup-serve for a serving-only machine)"; exit 1; }
	@test -f $(BUNDLE)/manifest.json || { echo "error: no bundle at $(BUNDLE) (missing $(BUNDLE)/manifest.json). Make one with: make train export"; exit 1; }
	$(PY) -m server --bundle $(BUNDLE) --host $(HOST) --port $(PORT) $(SERVE_ARGS)

apk: setup setup-android
	@test -f $(BUNDLE)/manifest.json || { echo "error: no bundle at $(BUNDLE) (missing $(BUNDLE)/manifest.json). Make one with: make train export"; exit 1; }
	$(PY) -m android_demo.build --bundle $(BUNDLE) --out $(APK)

bench: setup setup-android
	$(PY) -m bench --data $(DATA) --run $(RUN) --bundle $(BUNDLE) $(BENCH_ARGS)

# One style: ruff's lint and formatter (pyproject.toml) before any test runs.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup setup-android lint
	$(PY) -m pytest $(TEST_ARGS)

test-fast: setup lint
	$(PY) -m pytest -m "not slow" $(TEST_ARGS)

clean:
	rm -rf artifacts .pytest_cache
