# Two commands matter: `make run` (a gateway on http://127.0.0.1:8080, with the built-in Live API emulator
# when no Gemini key is set) and `make test`. Both build the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run test bench soak chromium coturn fleet-tools container-tools sip-tools clean

run: $(STAMP)
	$(BIN)/gateway serve

test: $(STAMP) chromium coturn fleet-tools container-tools sip-tools
	$(BIN)/pytest

bench: $(STAMP) fleet-tools sip-tools
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

# Debian packages the tests drive, never downloaded builds: as root, each is installed when missing.
# $(call debian_package,COMMAND,PACKAGE,TESTS)
define debian_package
	@if ! command -v $(1) >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's $(2) for the $(3) tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
		else \
			echo "$(2) is not installed: $(3) tests will be skipped (CI=true makes that a failure)"; \
		fi; \
	fi
endef

# The browser tests drive /usr/bin/chromium.
chromium:
	$(call debian_package,chromium,chromium,browser)

# The TURN tests start /usr/bin/turnserver themselves.
coturn:
	$(call debian_package,turnserver,coturn,TURN)

# The container tests build the image with Debian's podman (rootful, runc) on a base made by mmdebstrap;
# netavark and iptables publish the container's ports.
container-tools:
	$(call debian_package,podman,podman,container)
	$(call debian_package,runc,runc,container)
	$(call debian_package,/usr/lib/podman/netavark,netavark,container)
	$(call debian_package,/usr/sbin/iptables,iptables,container)
	$(call debian_package,mmdebstrap,mmdebstrap,container)

# The fleet tests start Debian's redis-server and haproxy themselves, in front of `gateway serve` replicas.
fleet-tools:
	$(call debian_package,redis-server,redis-server,fleet)
	$(call debian_package,/usr/sbin/haproxy,haproxy,fleet)

# The SIP tests drive Janus (SIP plugin, WebSocket transport), a baresip phone and SIPp, and build two small
# LD_PRELOAD shims with gcc.
sip-tools:
	$(call debian_package,janus,janus,SIP)
	$(call debian_package,baresip,baresip-core,SIP)
	$(call debian_package,sipp,sip-tester,SIP)
	$(call debian_package,gcc,gcc libc6-dev,SIP)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
