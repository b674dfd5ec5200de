# Two commands on a fresh machine (Python >= 3.11 with venv):
#   make quickstart   install tunefleet and tune a Keras MLP on digits into tunefleet.db
#   make test         install tunefleet with the test and backend extras (and Chromium, for the
#                     browser tests, when it can) and run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: quickstart test lint bench docs clean

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q .
	touch $@

# Tests also run the TensorFlow and PyTorch Keras backends. torch is pinned to the CPU
# build this machine kind carries (a looser range would fetch a multi-GB CUDA build).
$(VENV)/.test: $(VENV)/.core
	$(PIP) install -q -e ".[test]" tensorflow-cpu torch==2.13.0
	touch $@

quickstart: $(VENV)/.core
	$(PY) examples/quickstart.py

lint: $(VENV)/.test
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples
	$(VENV)/bin/lint-imports --no-cache   # the layering contracts in pyproject.toml

# The report tests need Debian's chromium and the storage tests Debian's postgresql: installed
# here when missing (root or password-less sudo, as CI does); otherwise one line says how, and
# pytest's summary lists the skipped tests. Two pytest workers (pytest-xdist); the tests that
# start PostgreSQL servers or Ray clusters share one worker (xdist_group "servers").
test: $(VENV)/.test lint
	@.ci/install-chromium || true
	@.ci/install-postgresql || true
	$(PY) -m pytest -p no:cacheprovider -n 2 --dist loadgroup

bench: $(VENV)/.test
	$(PY) benchmarks/overhead.py

# The documentation site (mkdocs.yml); strict: a warning fails the build. tests/test_docs_site.py
# runs the same build in `make test`.
docs: $(VENV)/.test
	$(VENV)/bin/mkdocs build --strict -d site

clean:
	rm -rf $(VENV) tunefleet.db site
