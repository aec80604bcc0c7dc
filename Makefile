# localml-kit: two commands do everything.
#   make lab    set up, prepare the sample models (the OpenVINO environment, onnxruntime-web), open JupyterLab
#   make test   set up, prepare the sample models (the OpenVINO environment, onnxruntime-web), run every test
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# The CPU build of PyTorch (only needed to build samples). Set TORCH_INDEX to the
# PyTorch CPU wheel index on machines where plain PyPI would give a CUDA build.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.localml-installed
LAB_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup samples lab test lint browser clean

# The graph widget's JavaScript (dagre + the widget, bundled by esbuild from the versions
# pinned in js/graph-view/package-lock.json); rebuilt when its sources change.
WIDGET_JS := localml_kit/widgets/static/graph_view.js
WIDGET_SRC := js/graph-view/package.json js/graph-view/package-lock.json js/graph-view/src/graph_view.js

setup: $(STAMP) $(WIDGET_JS)

$(WIDGET_JS): $(WIDGET_SRC) | $(STAMP)
	$(PY) -m localml_kit.labsetup --widget

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11+ not found; set PYTHON=/path/to/python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH_SPEC) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -e ".[all]"
	$(PY) -m localml_kit.labsetup
	@touch $@

samples: setup
	$(VENV)/bin/localml-kit samples fetch --all
	$(VENV)/bin/localml-kit envs create openvino
	$(PY) -m localml_kit.engines setup --optional
	$(VENV)/bin/localml-kit workshop setup --optional

lab: samples
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(LAB_ARGS)

# The workshop bundle: the whole series executed into ./workshop (and workshop.zip).
.PHONY: workshop
workshop: samples
	$(VENV)/bin/localml-kit workshop build --out workshop

browser:
	@bash scripts/ensure-chromium.sh

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check localml_kit tests benchmarks
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

test: samples browser lint
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache .mypy_cache .ruff_cache js/graph-view/node_modules $(WIDGET_JS)
