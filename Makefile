# plantwatch: the two set-up commands are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: demo test bench eval lint setup tshark tmux chromium rsyslog clean

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

setup: $(STAMP) tshark tmux chromium rsyslog

# Installs tshark/dumpcap through apt when they are missing and we are root; otherwise says what to do.
tshark:
	@if ! command -v tshark >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing tshark (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null; \
	  else \
	    echo "tshark is missing: install it (Debian: sudo apt-get install tshark); differential tests will be skipped"; \
	  fi; \
	fi

# tmux runs the console's end-to-end test in a real terminal (skipped when it is missing).
tmux:
	@if ! command -v tmux >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing tmux (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null; \
	  else \
	    echo "tmux is missing (Debian: sudo apt-get install tmux); the console's end-to-end test will be skipped"; \
	  fi; \
	fi

# chromium opens the exported HTML reports in their tests, rsyslog receives the SIEM feed in its
# tests (both skipped when missing); neither is needed to run plantwatch.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing (Debian: sudo apt-get install chromium); the HTML report tests will be skipped"; \
	  fi; \
	fi

rsyslog:
	@if ! command -v rsyslogd >/dev/null 2>&1 && [ ! -x /usr/sbin/rsyslogd ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing rsyslog (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog >/dev/null; \
	  else \
	    echo "rsyslog is missing (Debian: sudo apt-get install rsyslog); the SIEM output tests will be skipped"; \
	  fi; \
	fi

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
	$(PY) bench/zeek.py

# The detection regression suite: scenario plants, their attack-free twins, the demo, the real
# labelled and single-operation captures; one table, and bench/.cache/eval.json (bench/eval.py).
eval: setup
	$(PY) bench/eval.py

lint: setup
	$(VENV)/bin/ruff check core tui tests demo_data bench plantwatch setup.py

clean:
	rm -rf $(VENV) .pytest_cache bench/.cache
