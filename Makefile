# make demo: set up and run the HW14 comparison; make test: set up and run the tests (make test-fast: the
# unit tests only, about a minute; make lint: ruff, and mypy on the grader);
# make release REPO=OWNER/NAME: the students' repository in release/ (and the instructor's wheel beside it).
# Offline, point the data root at a torchvision MNIST folder: CL_COURSE_DATA=../shared/data make test
PYTHON ?= python3
VENV ?= .venv
OUT ?= runs/hw14
REPO ?=
BIN := $(VENV)/bin
# A Colab-like environment for tests/test_colab.py: Colab's Python and package versions (its published
# backend list), without nbgrader or cl_course. Python 3.13 from PATH or pyenv; none: those tests skip.
COLAB_PYTHON ?= $(shell for p in $$(command -v python3.13) $(HOME)/.pyenv/versions/3.13*/bin/python3.13; do \
                  "$$p" -c '' 2>/dev/null && echo "$$p" && break; done)
COLAB_VENV ?= .venv-colab
COLAB_PACKAGES := "torch==2.11.*" "torchvision==0.26.*" "ipywidgets==7.7.1" "notebook==6.5.7" "matplotlib==3.10.*" \
                  "numpy" "tqdm" "ipykernel"

.PHONY: setup colab-env demo test test-fast lint release

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,notebooks,grader]"
	touch $@

colab-env: $(COLAB_VENV)/.installed

$(COLAB_VENV)/.installed:
	@if [ -z "$(COLAB_PYTHON)" ]; then \
	  echo "no Python 3.13 found (set COLAB_PYTHON=...): the Colab-like tests will be skipped"; \
	else \
	  echo "creating $(COLAB_VENV) with Colab's versions (about 5 GB, 2 minutes)"; \
	  $(COLAB_PYTHON) -m venv $(COLAB_VENV) && $(COLAB_VENV)/bin/python -m pip install -q $(COLAB_PACKAGES) && touch $@; \
	fi

demo: setup
	$(BIN)/python -m cl_course run --out $(OUT)

# two pytest-xdist workers, then what conftest.py's ALONE table holds (clocks and CPU shares) by itself;
# both always run, and the target fails if either does
test:
	$(MAKE) -j2 setup colab-env  # side by side: mostly downloads and unpacking
	$(BIN)/python -m pytest -n 2 -m "not alone"; first=$$?; $(BIN)/python -m pytest -m alone && exit $$first

# the unit tests, about a minute: no notebooks, browsers, sandboxes or corpus (conftest.py's SLOW table)
test-fast: setup
	$(BIN)/python -m pytest -n 2 -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy  # the grader's annotations (pyproject.toml's [tool.mypy]); ruff's ANN rules require them

release: setup
	$(BIN)/python -m grader release $(if $(REPO),--repo $(REPO))
