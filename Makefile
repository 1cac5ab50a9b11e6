# Each target does its own set-up: a fresh machine needs nothing but python3.
PYTHON ?= python3
VENV ?= .venv
# torch goes in first, pinned: an unpinned requirement can pull GBs of CUDA wheels.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.attncli-installed

.PHONY: demo test test-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

DEMO_DIR ?= .demo

demo: $(STAMP)
	$(BIN)/attncli list
	$(BIN)/attncli info eca
	$(BIN)/attncli profile eca_resnet50 --device cpu
	mkdir -p $(DEMO_DIR)
	$(BIN)/attncli export eca_resnet50 --opset 17 --dynamic all --force -o $(DEMO_DIR)/eca_resnet50_opset17.onnx
	$(BIN)/attncli verify eca_resnet50 $(DEMO_DIR)/eca_resnet50_opset17.onnx

# Lint (ruff: real defects and dead code), the CI gate on every block and a few backbones of each
# family, then the test suite (its summary line last, where CI reads it).
CHECK_BACKBONES ?= eca_resnet18 sknet50 epsanet50 eca_mobilenetv2 coordatt_mobilenetv2 eca_cnn1d

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/attncli check --kind block --opset 11 --opset 17 -j 2 --timeout 600
	$(BIN)/attncli check $(CHECK_BACKBONES) --opset 11 --opset 17 -j 2 --timeout 600
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache $(DEMO_DIR)
