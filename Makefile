# Two commands matter: `make run` (a gateway on http://127.0.0.1:8080, with the built-in Live API emulator
# when no Gemini key is set) and `make test`. Both build the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run test bench soak chromium fleet-tools clean

run: $(STAMP)
	$(BIN)/gateway serve

test: $(STAMP) chromium fleet-tools
	$(BIN)/pytest

bench: $(STAMP) fleet-tools
	$(BIN)/python tests/bench/run.py
	$(BIN)/python tests/bench/fleet_cost.py

# Memory, descriptors and threads of a gateway as calls come and go (10 minutes; SOAK_ARGS="--minutes 60").
soak: $(STAMP)
	$(BIN)/python tests/bench/soak.py $(SOAK_ARGS)

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,bench]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# The browser tests drive Debian's Chromium (never a downloaded one). As root, install it when missing.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's chromium for the browser tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "chromium is not installed: browser tests will be skipped (CI=true makes that a failure)"; \
		fi; \
	fi

# The fleet tests (tests/fleet) start Debian's redis-server and haproxy themselves. As root, install them when missing.
fleet-tools:
	@if ! command -v redis-server >/dev/null 2>&1 || ! command -v haproxy >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's redis-server and haproxy for the fleet tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server haproxy >/dev/null; \
		else \
			echo "redis-server or haproxy is missing: fleet tests will be skipped (CI=true makes that a failure)"; \
		fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
