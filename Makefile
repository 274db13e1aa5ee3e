# Two commands a person needs: `make demo` (the pipeline, offline) and `make test` (the proof).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast lint bench train-demo clean image image-test

# requirements-dev.txt includes requirements.txt: the component package itself, editable (`captioning`).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) -m local caption samples/images/

# The test layers are directories: tests/{unit,component,function,tools,e2e,image}; tests/conftest.py marks
# every e2e test slow and every image test image. `make test`: every layer but image (`make image-test`,
# which needs Docker). `make test-fast`: no e2e either (servers, exports, subprocess CLIs), while editing.
test: $(VENV)/.installed lint
	$(PY) -m pytest -q -m "not image" tests

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow and not image" tests

# Format, style and the direction of imports between the package's lifecycles and the tools (.importlinter).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache --no-logo

bench: $(VENV)/.installed
	$(PY) -m bench

train-demo: $(VENV)/.installed
	$(PY) -m models.train_demo_shapes

# The function image, offline (docs/container-image.md). Build args: MODEL_ID, MODEL_SOURCE, RUNTIME,
# PRECISION, HALF_PRECISION_WEIGHTS, BASE_IMAGE, BUILDER (classic|buildkit), TAG, NO_CACHE=1, ARCH (x86_64|arm64:
# arm64 builds under QEMU user emulation with BuildKit, runtime onnx). E.g. `make image RUNTIME=torch`,
# `make image ARCH=arm64 TAG=captioning-function:arm64`.
ifdef HALF_WEIGHTS
$(error HALF_WEIGHTS is now HALF_PRECISION_WEIGHTS (one name for the setting))
endif
IMAGE_OPTIONS = $(if $(TAG),--tag "$(TAG)") $(if $(MODEL_ID),--model-id "$(MODEL_ID)") \
	$(if $(MODEL_SOURCE),--model-source "$(MODEL_SOURCE)") $(if $(RUNTIME),--runtime "$(RUNTIME)") \
	$(if $(PRECISION),--precision "$(PRECISION)") \
	$(if $(HALF_PRECISION_WEIGHTS),--half-precision-weights "$(HALF_PRECISION_WEIGHTS)") \
	$(if $(BASE_IMAGE),--base-image "$(BASE_IMAGE)") $(if $(BUILDER),--builder "$(BUILDER)") \
	$(if $(filter 1,$(NO_CACHE)),--no-cache) $(if $(ARCH),--architecture "$(ARCH)")

image: $(VENV)/.installed
	$(PY) -m imagebuild image $(IMAGE_OPTIONS)

# Starts Docker if needed, builds both runtimes' x86_64 images and the default runtime's arm64 image (under
# QEMU user emulation), runs tests/image (-m image) on each and prints a summary; also an onnx image of each
# IMAGE_TEST_FAMILIES' tiny model (default blip; empty: none). IMAGE_TEST_RUNTIMES, IMAGE_TEST_ARCHITECTURES
# and IMAGE_TEST_FAMILIES (comma-separated) narrow it.
image-test: $(VENV)/.installed
	$(PY) -m imagebuild image-test $(if $(IMAGE_TEST_RUNTIMES),--runtimes "$(IMAGE_TEST_RUNTIMES)") \
		$(if $(IMAGE_TEST_ARCHITECTURES),--architectures "$(IMAGE_TEST_ARCHITECTURES)")

clean:
	rm -rf $(VENV) .pytest_cache
