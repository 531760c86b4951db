# Two front doors: `make lab` (set up and open the series) and `make test`.
# Both create .venv on first use and reinstall only when a requirements file changes.

# PYTHON: the Python that creates .venv. Left empty, tools/find_python.sh picks python3 if it
# is 3.10 to 3.14, else the newest python3.14 ... python3.10 on the PATH.
PYTHON ?=
PIP_VERSION := 26.3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

.PHONY: lab app test test-binder notebooks media bench scale lint setup clean-venv

# The committed outputs and nbval compare printed numbers. With several BLAS threads
# the last digits of float results depend on the machine's core count, so notebooks
# are executed and tested with one thread: the same numbers on every machine.
DETERMINISTIC := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

setup: $(VENV)/.class-env

# torch first: on Linux x86_64 the CPU build from PyTorch's index, or PyPI's within
# seconds when that index cannot be reached (tools/install_torch.py prints which).
$(VENV)/.class-env: requirements.txt pyproject.toml tools/install_torch.py
	@test -x $(PY) || { python=$$(PYTHON="$(PYTHON)" $(SHELL) tools/find_python.sh) \
		&& echo "make: creating $(VENV) with $$python ($$("$$python" --version 2>&1))" && "$$python" -m venv $(VENV); }
	$(PY) -m pip install --quiet pip==$(PIP_VERSION)
	$(PY) tools/install_torch.py
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

# Lab's settings overrides (shut a notebook's kernel down when its tab closes) are read only from
# its application folder, so they are copied there, as postBuild does on Binder.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings

lab: $(VENV)/.class-env
	mkdir -p $(LAB_SETTINGS) && cp jupyter_config/lab_settings/overrides.json $(LAB_SETTINGS)/
	$(JUPYTER_CONFIG) $(BIN)/jupyter lab $(AS_ROOT) notebooks/00_start_here.ipynb

# The explorer alone on one screen (app/explorer.ipynb); a kernel is started ahead, so a page opens in about 2 s.
app: $(VENV)/.class-env
	$(JUPYTER_CONFIG) $(BIN)/voila --preheat_kernel=True --pool_size=1 app/explorer.ipynb

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

# Binder's memory (issue 20): notebooks 00 to 09 opened 30 s apart in one server with jupyter_config/,
# every cell run; peak of server plus kernels <= 2 GB; the explorer on a 24 MP upload <= 1 GB. Several minutes.
test-binder: $(VENV)/.test-env
	BINDER_TEST=1 $(PY) -m pytest -p no:cacheprovider -s tests/test_binder_session.py

# Re-execute every notebook in place, top to bottom, each in a fresh kernel.
notebooks: $(VENV)/.class-env
	@for nb in $(NOTEBOOKS); do \
		start=$$($(PY) -c 'import time; print(time.time())'); \
		$(DETERMINISTIC) $(BIN)/jupyter nbconvert --to notebook --execute --inplace --log-level=WARN \
			--ExecutePreprocessor.timeout=300 "$$nb" || { echo "FAILED: $$nb"; exit 1; }; \
		$(PY) -c 'import sys, time; print(f"{sys.argv[1]}: {(time.time() - float(sys.argv[2])) * 1000:.0f} ms")' "$$nb" "$$start"; \
	done

media: $(VENV)/.class-env
	$(PY) media/make_media.py

bench: $(VENV)/.class-env
	$(PY) bench/bench_slider.py
	$(PY) bench/bench_colour.py
	$(PY) bench/bench_svd.py
	$(DETERMINISTIC) $(PY) bench/bench_series.py
	$(PY) bench/bench_memory.py
	@echo "Browser figures (key press to painted at 0.26, 1 and 4 MP, the picture rebuilt in the page next to"
	@echo "the old kernel round trip, with and without our server settings; file chosen to first picture)"
	@echo "are printed by the browser tests and kept in screenshots/latency.txt:"
	@echo "  $(PY) -m pytest tests/test_browser.py -k 'latency or colour_explorer or uploads'"

# A stack of images larger than the Dask workers' memory, streamed through svd_compressed
# (about 3.3 GB of float32 through 2 workers capped at 1 GB each; a few minutes on 2 cores).
scale: $(VENV)/.class-env
	$(PY) bench/scale_dask.py

lint: $(VENV)/.test-env
	$(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)

# The course website: the executed notebooks as a Jupyter Book (site/build.py), built offline in
# build/site/_build/html with its own tools in .venv-site (requirements-site.txt) and the widget
# front ends from npm (site/package-lock.json). SITE_REPO_URL, SITE_BRANCH and SITE_JUPYTERHUB_URL
# set what the launch buttons open (site/build.py). `make test-site` builds it and reads every page
# in Chromium; plain `make test` skips those tests.
.PHONY: site test-site
SITE_VENV := .venv-site
$(SITE_VENV)/.site-env: requirements-site.txt
	@test -x $(SITE_VENV)/bin/python || { python=$$(PYTHON="$(PYTHON)" $(SHELL) tools/find_python.sh) \
		&& echo "make: creating $(SITE_VENV) with $$python" && "$$python" -m venv $(SITE_VENV); }
	$(SITE_VENV)/bin/python -m pip install --quiet pip==$(PIP_VERSION)
	$(SITE_VENV)/bin/python -m pip install --quiet -r requirements-site.txt
	touch $@

site: $(SITE_VENV)/.site-env
	SITE_REPO_URL="$(SITE_REPO_URL)" SITE_BRANCH="$(SITE_BRANCH)" SITE_JUPYTERHUB_URL="$(SITE_JUPYTERHUB_URL)" \
		$(SITE_VENV)/bin/python site/build.py

test-site: $(VENV)/.test-env $(SITE_VENV)/.site-env
	SITE_TESTS=1 SITE_PYTHON=$(SITE_VENV)/bin/python $(PY) -m pytest -p no:cacheprovider tests/test_site.py tests/test_html_export.py
