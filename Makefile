# Two commands do everything: `make all` (set up, then run the pipeline on the embedded sample)
# and `make test` (set up, then run the tests). `make study` runs the full variant set, `make bench`
# prints the performance ratios.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
# The five stages in pipeline order; a stage whose script does not exist yet is skipped.
STAGES := $(foreach s,inference benchmark analyze_results plot_results visualize_detections,$(wildcard $(s).py))
# Each stage in turn, timed; then one line with every stage's wall time, and one per family inference.py
# skipped (weights it could not fetch), as results/summary.md lists them. $(1): extra flags for inference.py.
define pipeline
	@set -e; times=""; for stage in $(STAGES); do echo "== $$stage"; start=$$(date +%s); \
	  if [ $$stage = inference.py ]; then $(PY) $$stage $(1); else $(PY) $$stage; fi; \
	  times="$$times $$stage $$(( $$(date +%s) - start )) s;"; done; echo "== wall time per stage:$$times"; \
	  sed -n 's/^> \(SKIPPED family .*\)/== \1/p' results/summary.md
endef

.PHONY: all study setup data test bench clean

all: data
	$(call pipeline,)

study: data
	$(call pipeline,--study)

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

# Every artifact, but each folder's README (tracked: it says what the stage writes there).
clean:
	find models results plots visualizations -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
