# Two commands do everything: `make all` (set up, then run the pipeline on the embedded sample)
# and `make test` (set up, then run the tests). `make bench` prints the performance ratios.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
# The five stages in pipeline order; a stage whose script does not exist yet is skipped.
STAGES := $(foreach s,inference benchmark analyze_results plot_results visualize_detections,$(wildcard $(s).py))

.PHONY: all setup data test bench clean

all: data
	@set -e; for stage in $(STAGES); do echo "== $$stage"; $(PY) $$stage; done

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

# The embedded default: a generated WIDER-format sample, unless a real dataset is already there.
data: $(STAMP)
	$(PY) -m facecompress.data.sample --keep-existing

test: $(STAMP)
	$(PY) -m pytest -q -rs

bench: all
	@set -e; for script in bench/*.py; do echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf models/* results/* plots/* visualizations/*
