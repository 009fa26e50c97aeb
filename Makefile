# Two commands matter: `make run` (a gateway on http://127.0.0.1:8080, with the built-in Live API emulator
# when no Gemini key is set) and `make test`. Both build the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run test bench soak chromium sip-tools clean

run: $(STAMP)
	$(BIN)/gateway serve

test: $(STAMP) chromium sip-tools
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python tests/bench/run.py

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

# The SIP tests drive Debian's Janus (SIP plugin, WebSocket transport), a baresip phone and SIPp, and build
# two small LD_PRELOAD shims with gcc. As root, install whatever is missing.
SIP_PACKAGES := janus baresip-core sip-tester gcc libc6-dev
sip-tools:
	@if ! command -v janus >/dev/null 2>&1 || ! command -v baresip >/dev/null 2>&1 || \
	    ! command -v sipp >/dev/null 2>&1 || ! command -v gcc >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's $(SIP_PACKAGES) for the SIP tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				$(SIP_PACKAGES) >/dev/null; \
		else \
			echo "janus, baresip, sipp or gcc is missing: SIP tests will be skipped (CI=true makes that a failure)"; \
		fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
