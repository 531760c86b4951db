# Two front doors: `make lab` (set up and open the series) and `make test`.
# Both create .venv on first use and reinstall only when a requirements file changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

.PHONY: lab app test notebooks media bench lint setup clean-venv

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

lab: $(VENV)/.class-env
	$(BIN)/jupyter lab notebooks/00_start_here.ipynb

app: $(VENV)/.class-env
	$(BIN)/voila notebooks/06_explorer.ipynb

test: $(VENV)/.test-env
	$(BIN)/ruff check .
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

# Re-execute every notebook in place, top to bottom, each in a fresh kernel.
notebooks: $(VENV)/.class-env
	@for nb in $(NOTEBOOKS); do \
		start=$$(date +%s%N); \
		$(BIN)/jupyter nbconvert --to notebook --execute --inplace --log-level=WARN \
			--ExecutePreprocessor.timeout=300 "$$nb" || { echo "FAILED: $$nb"; exit 1; }; \
		echo "$$nb: $$(( ($$(date +%s%N) - start) / 1000000 )) ms"; \
	done

media: $(VENV)/.class-env
	$(PY) media/make_media.py

bench: $(VENV)/.class-env
	$(PY) bench/bench_slider.py

lint: $(VENV)/.test-env
	$(BIN)/ruff check .

clean-venv:
	rm -rf $(VENV)
