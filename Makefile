# One-line set-up: `make test` and `make run` create .venv, install, fetch data, and run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install data lint docs test run clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Fashion-MNIST: Debian's package where apt works and we are root (as on CI),
# otherwise torchvision's download into the user's cache.
data: $(STAMP)
	bash scripts/ensure_fashion_mnist.sh $(PY)

# ruff's lint and format checks, then mypy's type check of the packages (settings of
# both in pyproject.toml); `make test` runs this before the tests.
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# The documentation site (mkdocs.yml, docs/) with warnings as errors: a broken link or an
# API name that no longer exists fails here. The result is site/index.html.
docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

test: install data lint docs
	$(PY) -m pytest -n 2 -q

# The default search on Fashion-MNIST, then its best architectures exported.
run: install data
	$(PY) -m search run --space densenet_hybrid
	$(PY) -m search export densenet_hybrid --top 3

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache site
