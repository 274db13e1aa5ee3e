# Two commands a person needs: `make demo` (the pipeline, offline) and `make test` (the proof).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench train-demo clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) -m local caption samples/images/

test: $(VENV)/.installed lint
	$(PY) -m pytest -q tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check --select S .

bench: $(VENV)/.installed
	$(PY) -m bench

train-demo: $(VENV)/.installed
	$(PY) -m models.train_demo_shapes

clean:
	rm -rf $(VENV) .pytest_cache
