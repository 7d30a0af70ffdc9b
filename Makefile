# Two commands do everything on a fresh machine:
#   make book   build the HTML book into _build/html from the committed notebook outputs
#   make test   library tests, the Colab clean room, every notebook at smoke scale (nbval),
#               a strict book build and browser tests; each stage's time is printed
# Others:
#   make test-book                               the strict book build alone
#   make test-browser                            browser tests over _build/html (builds it if missing)
#   make test-colab                              the Colab clean room alone
#   make execute NOTEBOOKS=book/02_static_mnist.ipynb SCALE=cpu   re-execute notebooks in place
#   make full-run [SCALE=full] [OUT=folder]      chapters 2, 4, 5, 6 at full scale (needs a GPU)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SCALE ?= cpu

.PHONY: venv book test test-lib test-colab test-notebooks test-book test-browser execute full-run bench clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

book: venv
	$(PY) tools/build_book.py

test: venv
	$(PY) tools/run_tests.py

test-lib: venv
	$(PY) tools/run_tests.py --only "library tests"

test-colab: venv
	$(PY) tools/run_tests.py --only "Colab clean room"

test-notebooks: venv
	$(PY) tools/run_tests.py --only "notebooks"

test-book: venv
	$(PY) tools/run_tests.py --only "book build"

test-browser: venv
	test -f _build/html/index.html || $(PY) tools/build_book.py
	$(PY) tools/run_tests.py --only "browser tests"

execute: venv
	$(PY) tools/execute.py --scale $(SCALE) $(NOTEBOOKS)

# SCALE given on the command line (make full-run SCALE=smoke) overrides the full run's own default
full-run: venv
	$(PY) tools/full_run.py $(if $(filter command line environment,$(origin SCALE)),--scale $(SCALE)) $(if $(OUT),--out $(OUT))

bench: venv
	for f in benchmarks/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf _build
