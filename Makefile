# plantwatch: the two set-up commands are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: demo test bench eval lint setup tshark tmux chromium rsyslog postgresql clean

# Debian's python3 lacks venv/ensurepip until python3-venv is installed: install it when root.
$(STAMP): pyproject.toml
	@python3 -m venv $(VENV) 2>/dev/null || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing python3-venv (apt)"; rm -rf $(VENV); \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	    python3 -m venv $(VENV); \
	  else echo "python3 cannot create a virtual environment: install python3-venv"; exit 1; fi; }
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	@# bytecode written once, as a package install does (an editable checkout run with
	@# PYTHONDONTWRITEBYTECODE would compile every module again at each start: ~0.1 CPU s)
	$(PY) -m compileall -q core tui plantwatch >/dev/null
	touch $(STAMP)

setup: $(STAMP) tshark tmux chromium rsyslog postgresql

# $(call apt_install,CHECK,PACKAGE,WHAT WAITS ON IT): when the shell test CHECK fails, PACKAGE is
# installed through apt if we are root on a Debian-like system; otherwise one line says what to
# install and what is skipped without it. No argument may hold a comma.
define apt_install
	@if ! { $(1); } >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(2) (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else \
	    echo "$(2) is missing (Debian: sudo apt-get install $(2)); $(3)"; \
	  fi; \
	fi
endef

# tshark is the decoders' oracle in the differential tests.
tshark:
	$(call apt_install,command -v tshark,tshark,the differential tests will be skipped)

# The PostgreSQL tests start a private server (initdb, pg_ctl; tests/pg_cluster.py).
postgresql:
	$(call apt_install,command -v initdb || ls /usr/lib/postgresql/*/bin/initdb,postgresql,the PostgreSQL store tests will be skipped)

# tmux runs the console's end-to-end test in a real terminal.
tmux:
	$(call apt_install,command -v tmux,tmux,the console's end-to-end test will be skipped)

# chromium opens the exported HTML reports in their tests, rsyslog receives the SIEM feed in its
# tests; neither is needed to run plantwatch.
chromium:
	$(call apt_install,command -v chromium,chromium,the HTML report tests will be skipped)

rsyslog:
	$(call apt_install,command -v rsyslogd || [ -x /usr/sbin/rsyslogd ],rsyslog,the SIEM output tests will be skipped)

# The demo: the console learns from the bundled plant capture, then replays the incident as if live.
demo: setup
	$(VENV)/bin/plantwatch demo

test: setup
	$(VENV)/bin/ruff check core tui tests demo_data bench plantwatch setup.py
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run.py
	$(PY) bench/run.py --plant office --runs one-core
	$(PY) bench/sensor.py
	$(PY) bench/console.py
	$(PY) bench/packet.py
	$(PY) bench/hostile_dns.py
	$(PY) bench/big_store.py
	$(PY) bench/store_pg.py
	$(PY) bench/zeek.py

# The detection regression suite: scenario plants, their attack-free twins, the demo, the real
# labelled and single-operation captures; one table, and bench/.cache/eval.json (bench/eval.py).
eval: setup
	$(PY) bench/eval.py

lint: setup
	$(VENV)/bin/ruff check core tui tests demo_data bench plantwatch setup.py

clean:
	rm -rf $(VENV) .pytest_cache bench/.cache
