# Two commands: `make repro` runs the pipeline on the demo, `make test` runs the tests.
# Both set up .venv first (pinned requirements; no internet needed beyond the package index).

PY := .venv/bin/python
VENV_STAMP := .venv/.installed
# Stage commands in dvc.yaml say `python`: it must be the project's environment.
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup repro test test-unit test-integration test-e2e lint format bench clean

setup: $(VENV_STAMP)

# Chainer 7.8.1 is sdist-only and needs setuptools<74 + wheel present, without build isolation.
$(VENV_STAMP): requirements.txt pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install --quiet "setuptools<74" wheel
	$(PY) -m pip install --quiet --no-build-isolation -r requirements.txt
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $(VENV_STAMP)

repro: setup
	@test -d .git || (git init -q && git add -A && \
		git -c user.name=charaid -c user.email=charaid@localhost commit -qm "initial commit")
	.venv/bin/dvc repro

test: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/pytest

# One layer of tests/ at a time: `make test-unit` takes under a minute, the others longer.
test-unit test-integration test-e2e: setup
	.venv/bin/pytest tests/$(@:test-%=%)

lint: setup
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: setup
	$(PY) -m pip install --quiet -r requirements-bench.txt
	# torch pulls setuptools>=77, which breaks `import chainer`: put Chainer's back.
	$(PY) -m pip install --quiet "setuptools<74"
	# the twins first: same outputs as the Chainer models with the weights copied across
	$(PY) bench/twins.py
	$(PY) bench/train_speed.py --models seed_cnn,bn_cnn,detector

clean:
	rm -rf .venv data dvc_plots
