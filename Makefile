# Two commands: `make demo` and `make test`. Each creates .venv if missing, installs what it
# needs into it, and runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test test-thorough test-fast mutate test-torch test-browser bench gallery docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.base
	$(PIP) install -e ".[test]"
	touch $@

demo: $(VENV)/.base
	$(BIN)/python examples/demo.py

# docs/gallery/: the chapter-10 figures as SVG and PNG, and docs/gallery.md
gallery: $(VENV)/.base
	$(BIN)/python docs/make_gallery.py

# the docs site (mkdocs.yml, docs/) into site/, every warning an error; CI builds it too
$(VENV)-docs/.ok: pyproject.toml
	test -x $(VENV)-docs/bin/python || $(PYTHON) -m venv $(VENV)-docs
	$(VENV)-docs/bin/python -m pip --disable-pip-version-check -q install -e ".[docs]"
	touch $@

docs: $(VENV)-docs/.ok
	NO_MKDOCS_2_WARNING=1 $(VENV)-docs/bin/mkdocs build --strict --clean -d site

test: $(VENV)/.test
	$(BIN)/python -m pytest -q

# the suite with the fast extra (numba) in a venv of its own: the loop kernels compiled for
# real (tests/test_loopkernel.py; the first run compiles them, seconds each, then disk-cached)
$(VENV)-fast/.ok: pyproject.toml
	test -x $(VENV)-fast/bin/python || $(PYTHON) -m venv $(VENV)-fast
	$(VENV)-fast/bin/python -m pip --disable-pip-version-check -q install -e ".[test,fast]"
	touch $@

test-fast: $(VENV)-fast/.ok
	$(VENV)-fast/bin/python -m pytest -q

# the explorer page (g.explore) in a real headless browser: Debian's Chromium, installed here
# if missing (apt, as root), then the browser tests (tests/test_explore.py)
test-browser: $(VENV)/.test
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	$(BIN)/python -m pytest -q tests/test_explore.py

# thousands of random circuits through every property (about an hour on 2 cores)
test-thorough: $(VENV)/.test
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -q

# does the suite bite? mutants of grad, compile and the primitives' rules (MUTATE="--all")
mutate: $(VENV)/.test
	$(BIN)/python tools/mutate.py $(MUTATE)

# the peers the benchmark compares against (torch 2.13.0 is the local CPU build here)
$(VENV)-bench/.ok: pyproject.toml
	test -x $(VENV)-bench/bin/python || $(PYTHON) -m venv $(VENV)-bench
	$(VENV)-bench/bin/python -m pip --disable-pip-version-check -q install -e ".[fast]" \
	    torch==2.13.0 jax jaxlib autograd threadpoolctl
	touch $@

# the suite once more with PyTorch installed: the torch comparisons run instead of skipping
test-torch: $(VENV)-bench/.ok
	$(VENV)-bench/bin/python -m pip --disable-pip-version-check -q install -e ".[test]"
	$(VENV)-bench/bin/python -m pytest -q

bench: $(VENV)-bench/.ok
	$(VENV)-bench/bin/python benchmarks/construction.py
	$(VENV)-bench/bin/python benchmarks/run.py
	$(VENV)-bench/bin/python benchmarks/memory.py

clean:
	rm -rf $(VENV) $(VENV)-bench $(VENV)-fast $(VENV)-docs site .pytest_cache .hypothesis build *.egg-info
