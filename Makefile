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
	$(PYTHON) -m pip install --quiet -e ".[generate,train,test]"

DEMO := pairhunt-demo

# generate ttbar, reconstruct it with the shipped SPA-NET model and chi2, score both against truth
demo: install
	$(VENV)/bin/pairhunt generate ttbar --events 5000 --workers 2 --seed 1 --output $(DEMO)/ttbar.root
	echo '{"ttbar": ["ttbar.root"]}' > $(DEMO)/fileset.json
	$(VENV)/bin/pairhunt run $(DEMO)/fileset.json -o $(DEMO)/run --method spanet=ttbar_allhad --method chi2
	$(VENV)/bin/pairhunt evaluate $(DEMO)/run $(DEMO)/fileset.json

test: install
	$(PYTHON) -m pytest
