# Two commands do all set-up on a fresh machine:
#   make demo   # the main job on its embedded default config
#   make test   # the default test suite (no slow, no gpu)
# Each creates .venv and installs what it needs the first time.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all bench notebooks clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch lies on disk; installing it first keeps pip from
	# pulling a CUDA build when transformers/trl ask for torch.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test,bench]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) experiments/train.py --overwrite

# --durations=15 lists the slowest tests at the end, to keep the suite fast.
test: $(STAMP)
	$(PY) -m pytest -q -n auto -m "not slow and not gpu" --durations=15

test-all: $(STAMP)
	$(PY) -m pytest -q -n auto -m ""

bench: $(STAMP)
	$(PY) benchmarks/sampler.py --quick
	$(PY) benchmarks/mcts.py --quick
	$(PY) benchmarks/grpo_step.py --new_tokens=8 --steps=5
	$(PY) benchmarks/alphazero.py --quick

# The notebooks are generated from their paired scripts (colab/*.py, jupytext percent format):
# edit the script, then rebuild the .ipynb (cell ids kept; tests/test_colab_*.py check the pair).
notebooks: $(STAMP)
	for f in colab/*.py; do $(PY) -m jupytext --to ipynb --update "$$f"; done

clean:
	rm -rf $(VENV) runs .pytest_cache
