# The two commands of the README: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := libsystemd-dev pkg-config gcc python3-dev systemd systemd-journal-remote nginx-light \
	chromium chromium-driver redis-server rsyslog rsyslog-gnutls gnutls-bin postgresql
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench install apt clean dcos-cli openapi

install: $(STAMP)

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install:$$missing" >&2; exit 1; fi; \
	  echo "apt-get install$$missing"; \
	  noservice=/usr/sbin/policy-rc.d; added=""; \
	  if [ ! -e $$noservice ]; then printf '#!/bin/sh\nexit 101\n' > $$noservice; chmod +x $$noservice; added=1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; status=$$?; \
	  if [ -n "$$added" ]; then rm -f $$noservice; fi; \
	  [ $$status = 0 ] || exit $$status; \
	fi
	@test -s /etc/machine-id || systemd-machine-id-setup >/dev/null

$(STAMP): pyproject.toml setup.py app/journal/_fast.c | apt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

run: install
	$(VENV)/bin/logway dev --with-redis

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# The real DC/OS CLI 0.6.1, our compatibility client, for the tests that drive it (from PyPI).
DCOS_CLI_INSTALLER := ../shared/tools/install-dcos-cli.sh
dcos-cli:
	@if [ -f $(DCOS_CLI_INSTALLER) ]; then bash $(DCOS_CLI_INSTALLER) /tmp/dcos-cli; \
	else echo "$(DCOS_CLI_INSTALLER) not found: the dcos CLI tests will skip" >&2; fi

# openapi/gateway.json and node.json, generated from the apps (tests/openapi fails when stale).
openapi: install
	$(PY) -m app.openapi openapi

unit: install dcos-cli
	$(VENV)/bin/pytest -q --durations=20

test: lint typecheck unit

# `make bench` runs every section; `make bench ONLY=gateway` one of them (python -m bench --help).
bench: install
	$(PY) -m bench $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf $(VENV) .logway
