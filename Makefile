# make demo: set up and run the HW14 comparison; make test: set up and run the tests.
# Offline, point the data root at a torchvision MNIST folder: CL_COURSE_DATA=../shared/data make test
PYTHON ?= python3
VENV ?= .venv
OUT ?= runs/hw14
BIN := $(VENV)/bin

.PHONY: setup demo test

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/python -m cl_course run --out $(OUT)

test: setup
	$(BIN)/python -m pytest
