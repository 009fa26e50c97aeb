# Two commands matter: `make run` (a gateway on http://127.0.0.1:8080, with the built-in Live API emulator
# when no Gemini key is set) and `make test`. Both build the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run test bench soak chromium fleet-tools container-tools clean

run: $(STAMP)
	$(BIN)/gateway serve

test: $(STAMP) chromium fleet-tools container-tools
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

# Debian packages that tests start themselves. As root, `make test` installs the missing ones; otherwise those
# tests are skipped (CI=true makes that a failure). tests/fleet: Redis and HAProxy in front of the replicas.
# tests/container: the image built with podman, rootful with runc, on a base made by mmdebstrap; netavark and
# iptables publish the container's ports.
FLEET_PACKAGES := redis-server haproxy
CONTAINER_PACKAGES := podman runc netavark iptables mmdebstrap

define install_missing
	@missing=$$(for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's" $$missing "for the $(2) tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing" $$missing": $(2) tests will be skipped (CI=true makes that a failure)"; \
		fi; \
	fi
endef

fleet-tools:
	$(call install_missing,$(FLEET_PACKAGES),fleet)

container-tools:
	$(call install_missing,$(CONTAINER_PACKAGES),container)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
