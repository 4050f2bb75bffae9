"""A real local Ray cluster for the batch-job tests: a head node and a second node joined to it, each a `ray start`
of its own with one CPU, as a second machine would join (here both run on this one). Token authentication is on,
with a token made for the test session, as a real cluster should run; the object store is kept small.

`RayCluster.stop` runs ``ray stop --force``, which ends every Ray process on the machine."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _server import free_port

__all__ = ["RayCluster", "ray_cluster", "worker_pids"]

_OBJECT_STORE_BYTES = 300 * 1024 * 1024


class RayCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        self._ray = ray
        common = ["--num-cpus", "1", "--object-store-memory", str(_OBJECT_STORE_BYTES), "--disable-usage-stats"]
        self._run("start", "--head", "--port", str(self.port), "--include-dashboard", "false", *common)
        self._run("start", "--address", self.address, *common)
        self._wait_for_nodes(2)

    def _run(self, *args: str) -> None:
        done = subprocess.run([self._ray, *args], env=self.env, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def _wait_for_nodes(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run(
                [self._ray, "status", "--address", self.address],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode == 0 and done.stdout.count("node_") >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster at {self.address} did not show {count} nodes")

    def stop(self) -> None:
        subprocess.run([self._ray, "stop", "--force"], env=self.env, capture_output=True, timeout=120)


def worker_pids() -> list[int]:
    """The processes of the job's actors (Ray names them after the mapped class)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [int(line.split(None, 1)[0]) for line in out.splitlines() if "_RayWorker" in line]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    cluster = RayCluster()
    try:
        yield cluster
    finally:
        cluster.stop()
