# make demo: set up and run the HW14 comparison; make test: set up and run the tests;
# make release: the student notebooks and wheel in release/.
# Offline, point the data root at a torchvision MNIST folder: CL_COURSE_DATA=../shared/data make test
PYTHON ?= python3
VENV ?= .venv
OUT ?= runs/hw14
BIN := $(VENV)/bin

.PHONY: setup demo test release

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,notebooks,grader]"
	touch $@

demo: setup
	$(BIN)/python -m cl_course run --out $(OUT)

test: setup
	$(BIN)/python -m pytest

release: setup
	$(BIN)/python -m grader release
