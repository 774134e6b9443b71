# AISP: two commands on a fresh machine.
#   make serve   set up .venv and start the server with the demo stream
#   make test    set up .venv and run the whole test suite
# Setup is idempotent: a stamp keyed on the hash of the dependency files skips pip when
# nothing changed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEPS_HASH := $(shell cat pyproject.toml | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(DEPS_HASH)
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup serve test demo bench lint clean help

help:
	@echo "make serve  - set up and start the server with the demo stream on http://127.0.0.1:8000"
	@echo "make test   - set up and run all tests"
	@echo "make demo   - run the pipeline CLI on the bundled demo source"
	@echo "make bench  - run the benchmarks (JSON on stdout)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	@$(BIN)/python -c "import cv2, importlib.metadata as m; \
	  w=[d.metadata['Name'] for d in m.distributions() if d.metadata['Name'].lower().startswith('opencv')]; \
	  assert len(w)==1, f'expected exactly one OpenCV wheel, got {w}'"
	@rm -f $(VENV)/.installed-*
	@touch $@

serve: setup
	AISP_DEMO=$${AISP_DEMO:-1} $(BIN)/aisp serve

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup
	@mkdir -p out
	$(BIN)/aisp run demo --model face_detection --out out/demo.mp4 --events out/demo.jsonl
	@echo "outputs: out/demo.mp4 (annotated video), out/demo.jsonl (one JSON line per frame)"

bench: setup
	@$(BIN)/aisp bench all

lint: setup
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
