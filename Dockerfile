# The gateway in a container. Media is UDP: the gateway binds it to GATEWAY_ICE_PORT_RANGE (40000-40099 here),
# so publish that range with the same numbers and set GATEWAY_ICE_PUBLIC_ADDRESS to the address callers
# reach; or use host networking, or TURN with GATEWAY_ICE_RELAY_ONLY=true. See deploy/README.md.
# podman: build with `--format docker`, or the OCI format drops the HEALTHCHECK.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY gateway ./gateway
COPY static ./static
# Editable, so the demo page in /app/static sits where the package looks for it.
RUN pip install -c constraints.txt -e . \
 && useradd --system --uid 10001 --home-dir /app gateway

USER gateway
ENV GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_ICE_PORT_RANGE=40000-40099
EXPOSE 8080 40000-40099/udp
# Shell form, so the check follows GATEWAY_PORT as the container runs it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${GATEWAY_PORT:-8080}/healthz', timeout=2)"
# SIGTERM drains: /readyz turns 503, the calls get GATEWAY_DRAIN_SECONDS (30) to end, then the process exits 0.
# Stop with a longer timeout (docker/podman stop -t 40, Compose stop_grace_period): the default 10 s kills it.
STOPSIGNAL SIGTERM
CMD ["gateway", "serve"]
