"""The container suite: the image built from the unchanged Dockerfile with Debian's podman (rootful, runc), on a
base made here from Debian packages (tests/container/images.py), and run as a user would.

Needs root and `podman runc mmdebstrap iptables` (`make container-tools` installs them as root); without
them the suite is skipped, or fails when CI=true.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.container.images import build_gateway_image
from tests.container.podman import Podman, missing_tools


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    missing = missing_tools()
    problem = (f"missing {', '.join(missing)}: `make container-tools` as root installs them" if missing
               else "rootful podman needs root" if os.geteuid() != 0 else None)
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"container tests cannot run and CI=true: {problem}")
        pytest.skip(problem)
    podman = Podman(tmp_path_factory.mktemp("podman"))
    try:
        yield podman
    finally:
        podman.clean_up()


@pytest.fixture(scope="session")
def gateway_image(podman: Podman) -> str:
    return build_gateway_image(podman)


@pytest.fixture(scope="session")
def network(podman: Podman) -> str:
    return podman.create_network()
