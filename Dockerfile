# The gateway in a container. Media is UDP on ports aiortc picks itself (aioice has no port-range option), so
# run it with host networking, or behind TURN with GATEWAY_ICE_RELAY_ONLY=true: see deploy/README.md.
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
    GATEWAY_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
# SIGTERM drains: /readyz turns 503 and calls get GATEWAY_DRAIN_SECONDS to finish.
STOPSIGNAL SIGTERM
CMD ["gateway", "serve"]
