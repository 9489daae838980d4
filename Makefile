# The two commands of the README. Each sets up everything on a fresh machine:
#   make demo   installs pairhunt into .venv and runs the main job on the bundled default
#   make test   installs pairhunt with its test extras into .venv and runs the test suite
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# torch goes in first, pinned to the local CPU build, so no CUDA wheels are pulled in
TORCH := torch==2.13.0

.PHONY: install demo test

$(PYTHON):
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip

install: $(PYTHON)
	$(PYTHON) -m pip install --quiet "$(TORCH)"
	$(PYTHON) -m pip install --quiet -e ".[generate,train,anomaly,test,dask]"

DEMO := pairhunt-demo

# generate QCD + gluinos, reconstruct with the shipped ABC model and mass asymmetry, bump-hunt
demo: install
	$(VENV)/bin/pairhunt demo --output $(DEMO)

test: install
	$(PYTHON) -m pytest
