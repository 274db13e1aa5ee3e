# Two commands a person needs: `make demo` (the pipeline, offline) and `make test` (the proof).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast lint bench train-demo clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) -m local caption samples/images/

test: $(VENV)/.installed lint
	$(PY) -m pytest -q -m "not image" tests

# Everything but the slow end-to-end modules (servers, the demo model end to end): a quick check while editing.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow and not image" tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(PY) -m bench

train-demo: $(VENV)/.installed
	$(PY) -m models.train_demo_shapes

clean:
	rm -rf $(VENV) .pytest_cache
