# Two front doors: `make lab` (set up and open the series) and `make test`.
# Both create .venv on first use and reinstall only when a requirements file changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

.PHONY: lab app test notebooks media bench scale lint setup clean-venv

# The committed outputs and nbval compare printed numbers. With several BLAS threads
# the last digits of float results depend on the machine's core count, so notebooks
# are executed and tested with one thread: the same numbers on every machine.
DETERMINISTIC := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

setup: $(VENV)/.class-env

$(VENV)/.class-env: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 10) else "Python 3.10 or newer is needed, found %d.%d" % v[:2])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $@

$(VENV)/.test-env: $(VENV)/.class-env requirements-test.txt
	$(PY) -m pip install -r requirements-test.txt
	touch $@

# Jupyter refuses to run as root (containers, some CI) unless told it may.
AS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

# Both read jupyter_config/ (as Binder and the browser tests do): uploads up to 64 MB.
JUPYTER_CONFIG := JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter_config"

lab: $(VENV)/.class-env
	$(JUPYTER_CONFIG) $(BIN)/jupyter lab $(AS_ROOT) notebooks/00_start_here.ipynb

app: $(VENV)/.class-env
	$(JUPYTER_CONFIG) $(BIN)/voila notebooks/06_explorer.ipynb

# The browser tests (tests/test_browser.py) need Chromium: without it they skip, or fail when CI=true.
test: $(VENV)/.test-env
	$(BIN)/ruff check .
	@if [ -n "$$CHROMIUM" ]; then \
		command -v "$$CHROMIUM" >/dev/null 2>&1 || echo "make test: CHROMIUM=$$CHROMIUM is not an executable, so the browser tests will be skipped (they fail when CI=true)."; \
	elif [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
		echo "make test: Chromium is not installed, so the browser tests will be skipped (they fail when CI=true)."; \
		echo "  Install it with: sudo apt-get install chromium    (or run: make test CHROMIUM=/path/to/chromium)"; \
	fi
	$(PY) -m pytest

# Re-execute every notebook in place, top to bottom, each in a fresh kernel.
notebooks: $(VENV)/.class-env
	@for nb in $(NOTEBOOKS); do \
		start=$$(date +%s%N); \
		$(DETERMINISTIC) $(BIN)/jupyter nbconvert --to notebook --execute --inplace --log-level=WARN \
			--ExecutePreprocessor.timeout=300 "$$nb" || { echo "FAILED: $$nb"; exit 1; }; \
		echo "$$nb: $$(( ($$(date +%s%N) - start) / 1000000 )) ms"; \
	done

media: $(VENV)/.class-env
	$(PY) media/make_media.py

bench: $(VENV)/.class-env
	$(PY) bench/bench_slider.py
	$(PY) bench/bench_svd.py
	$(DETERMINISTIC) $(PY) bench/bench_series.py

# A stack of images larger than the Dask workers' memory, streamed through svd_compressed
# (about 3.3 GB of float32 through 2 workers capped at 1 GB each; a few minutes on 2 cores).
scale: $(VENV)/.class-env
	$(PY) bench/scale_dask.py

lint: $(VENV)/.test-env
	$(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)
