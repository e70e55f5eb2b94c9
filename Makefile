PYTHON ?= python

.PHONY: install test lint typecheck check bench bench-startup bench-auth run

install:
	$(PYTHON) -m pip install -e '.[test]'

test:
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check gortc tests bench
	$(PYTHON) -m ruff format --check gortc tests bench

typecheck:
	$(PYTHON) -m mypy

check: lint typecheck test

run:
	$(PYTHON) -m gortc serve

bench: bench-startup bench-auth

bench-startup:
	$(PYTHON) bench/startup.py

bench-auth:
	$(PYTHON) bench/auth_requests.py
