# Two commands do everything on a fresh machine:
#   make book   build the HTML book into _build/html from the committed notebook outputs
#   make test   library tests, every notebook at smoke scale (nbval), and a strict book build
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SCALE ?= cpu

.PHONY: venv book test test-lib test-notebooks test-book test-browser execute bench clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

book: venv
	$(PY) -m hypernet_lib.tools.build_book

test: venv
	$(PY) -m hypernet_lib.tools.run_tests

test-lib: venv
	$(PY) -m pytest -q tests

test-notebooks: venv
	HYPERNET_SCALE=smoke $(PY) -m pytest -q --nbval-lax -p no:cacheprovider book

test-book: venv
	$(PY) -m hypernet_lib.tools.build_book --strict --execute

execute: venv
	HYPERNET_SCALE=$(SCALE) $(PY) -m hypernet_lib.tools.execute $(NOTEBOOKS)

bench: venv
	for f in benchmarks/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf _build
