"""The images the container tests run: the Dockerfile's base, made from Debian packages, then the gateway.

No registry is reachable from CI, so `python:3.11-slim-bookworm` is made here: mmdebstrap installs Debian's
python3.11 and venv into a bookworm root, `python3 -m venv /usr/local` puts python, pip and whatever pip
installs into /usr/local/bin as in the real image, and `podman import` gives it the Dockerfile's base name.
The Dockerfile itself is built unchanged, with --pull=never.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from tests.container.podman import Podman

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
GATEWAY_IMAGE = "localhost/gateway:test"
CACHE = REPO / "build" / "container"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

MMDEBSTRAP = (
    "--variant=minbase",
    "--format=tar",  # whatever the output file is called
    "--include=python3.11,python3-venv,ca-certificates",
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",  # usr-is-merged, not usrmerge and its Perl
    '--aptopt=Apt::Install-Recommends "false"',
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    '--customize-hook=chroot "$1" python3 -m venv /usr/local',
    "bookworm",  # no mirror given: deb.debian.org with bookworm-updates and bookworm-security
)
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)


def base_tarball() -> Path:
    """The base root as a tarball, made once per recipe and kept in build/container/ under the recipe's hash
    (a changed recipe makes a new one; a fresh CI machine always makes its own)."""
    recipe = hashlib.sha256(json.dumps([MMDEBSTRAP, IMPORT_CHANGES]).encode()).hexdigest()[:16]
    tarball = CACHE / f"python-3.11-slim-bookworm-{recipe}.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_name(f"{tarball.stem}.{os.getpid()}.partial")  # renamed only once complete
    done = subprocess.run(["mmdebstrap", *MMDEBSTRAP, str(partial)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"mmdebstrap failed ({done.returncode}):\n{done.stderr[-3000:]}")
    for stale in CACHE.glob("python-3.11-slim-bookworm-*.tar"):
        stale.unlink()
    os.replace(partial, tarball)
    return tarball


def build_gateway_image(podman: Podman) -> str:
    """Import the base, then build the Dockerfile as a user would (docker format keeps its HEALTHCHECK)."""
    podman("import", *(f"--change={change}" for change in IMPORT_CHANGES), str(base_tarball()), BASE_IMAGE,
           timeout=300)
    # pip in the build trusts what this machine trusts (a TLS-inspecting proxy's CA, say); Debian's pip
    # reads the system bundle, so lend it the host's for the build only.
    trust = ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"] if HOST_CA_BUNDLE.exists() else []
    podman("build", "--format", "docker", "--pull=never", "--network=host", *trust, "--tag", GATEWAY_IMAGE,
           str(REPO), timeout=900)
    return GATEWAY_IMAGE
