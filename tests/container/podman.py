"""Rootful podman with a home of its own: storage, run state, networks and configuration under one folder, so a
test run needs nothing of the machine's container state and leaves none behind.

What these machines need (issue 13): the `runc` runtime; default ulimits no higher than podman's own, because
root here lacks CAP_SYS_RESOURCE and cannot raise a limit (podman otherwise asks for 1048576); cgroupfs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import resource
import shutil
import subprocess
from pathlib import Path

# podman 4.3 lowers its own RLIMIT_NPROC to this at start (strace shows it); a container cannot get more.
PODMAN_NPROC = 32768
TOOLS = ("podman", "runc", "mmdebstrap", "iptables")  # iptables: netavark sets up published ports with it


class PodmanError(RuntimeError):
    pass


class Podman:
    def __init__(self, home: Path) -> None:
        self.home = home
        for name in ("root", "run", "tmp", "networks"):
            (home / name).mkdir(parents=True, exist_ok=True)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], PODMAN_NPROC)
        (home / "containers.conf").write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{home}/events.log"\n'
            f'tmp_dir = "{home}/tmp"\n'
            "[network]\n"
            'network_backend = "netavark"\n'
            f'network_config_dir = "{home}/networks"\n'
        )
        (home / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{home}/root"\nrunroot = "{home}/run"\n'
        )
        # Nothing is ever pulled (--pull=never): short names resolve to what is in local storage.
        (home / "registries.conf").write_text('unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n')
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(home / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(home / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(home / "registries.conf"),
        }

    def __call__(self, *args: str, timeout: float = 120) -> str:
        """Run `podman args...` and return its stdout; PodmanError with its stderr if it fails."""
        done = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            output = (done.stdout[-3000:] + done.stderr[-3000:]).strip()
            raise PodmanError(f"podman {' '.join(args)}: exit {done.returncode}\n{output}")
        return done.stdout

    async def run_async(self, *args: str, timeout: float = 60) -> tuple[int, str]:
        """`podman args...` without blocking the event loop (calls go on meanwhile): exit code and stdout."""
        process = await asyncio.create_subprocess_exec(
            "podman", *args, env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout)
        return process.returncode or 0, stdout.decode()

    def create_network(self) -> str:
        """A bridge network of this run's own: a random free /24 and bridge name, so runs at once never clash
        (podman 4.3 names every run's first bridge `podman1`, and has no option to name it)."""
        suffix = f"{random.randrange(16**6):06x}"
        name = f"gwtest-{suffix}"
        self("network", "create", "--disable-dns", "--subnet", str(_free_subnet()), name)
        config = self.home / "networks" / f"{name}.json"
        network = json.loads(config.read_text())
        network["network_interface"] = f"gwt{suffix}"
        config.write_text(json.dumps(network))
        return name

    def clean_up(self) -> None:
        """Remove every container and network of this home (bridges, firewall rules), then the home itself."""
        self("rm", "--all", "--force", "--time", "0")
        for name in self("network", "ls", "--format", "{{.Name}}").split():
            if name != "podman":
                self("network", "rm", "--force", name)
        shutil.rmtree(self.home)


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no route of this machine overlaps."""
    taken = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        destination, mask = (ipaddress.IPv4Address(bytes.fromhex(f)[::-1]) for f in (fields[1], fields[7]))
        if int(mask):
            taken.append(ipaddress.IPv4Network(f"{destination}/{mask}", strict=False))
    for _ in range(100):
        subnet = ipaddress.IPv4Network(f"10.{random.randrange(100, 250)}.{random.randrange(256)}.0/24")
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise PodmanError("no free 10.x.y.0/24 subnet for the test network")
