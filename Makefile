# polylens: `make lab` opens the curriculum, `make test` runs every test.
# Both create .venv on first use and install what they need into it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# What a learner needs (make lab) and, on top, what the tests need (make test).
LAB_STAMP  := $(VENV)/.polylens-lab
TEST_STAMP := $(VENV)/.polylens-test
# On Linux without a GPU, `make TORCH_INDEX=https://download.pytorch.org/whl/cpu lab`
# fetches the small CPU-only PyTorch wheel instead of the CUDA one.
TORCH_INDEX ?=
PIP_INDEX := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX),)
# Jupyter refuses to run as root (common in containers) unless told it may.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help lab test bench binder-check site notebooks-clean clean

help:
	@echo "make lab    - open the curriculum in JupyterLab (creates .venv on first use)"
	@echo "make test   - run the unit tests and execute every notebook (nbval)"
	@echo "make bench  - print the performance table (benchmarks/)"
	@echo "make binder-check - build binder/'s environment and run every notebook in it"
	@echo "make site   - build the course as a static website in site/ (every notebook executed)"
	@echo "make clean  - remove .venv and caches"

# pip prints each package as it goes (no --quiet): a first install takes a minute or two and must not look stuck.
$(LAB_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing what a learner needs into $(VENV) (first time only, a minute or two)..."
	$(BIN)/python -m pip install --disable-pip-version-check $(PIP_INDEX) -e ".[lab]"
	@touch $@

$(TEST_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing polylens and the test tools into $(VENV) (first time only, a minute or two)..."
	$(BIN)/python -m pip install --disable-pip-version-check $(PIP_INDEX) -e ".[lab,test]"
	@touch $@ $(LAB_STAMP)

# Served from the repository root (so a notebook's links to ../docs/ open), starting at the welcome notebook.
lab: $(LAB_STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks/00_welcome.ipynb $(LAB_ROOT)

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

bench: $(LAB_STAMP)
	$(BIN)/python -m benchmarks

# The Binder dry run (tools/binder_check.py); `make test` runs it too (tests/binder/).
binder-check: $(TEST_STAMP)
	$(BIN)/python tools/binder_check.py

# The course as a static website in site/ (tools/build_site.py); offline, every notebook executed.
site: $(TEST_STAMP)
	$(BIN)/python tools/build_site.py

notebooks-clean: $(TEST_STAMP)
	$(BIN)/python tools/nbclean.py notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
