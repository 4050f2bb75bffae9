"""A real `frugalsense serve` process on 127.0.0.1 for the API tests (no test client, no mocks), on SQLite in its
data folder or, given ``database_url``, on a PostgreSQL database (tests/_backends.py starts one)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    model_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    database_url: str | None = None
    port: int = 0
    admin_key: str = ""
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *args: str) -> list[str]:
        database = ["--database-url", self.database_url] if self.database_url else []
        return [sys.executable, "-m", "frugalsense.cli", "--data-dir", str(self.data_dir), *database, *args]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "FRUGALSENSE_MODEL_CACHE": str(self.model_dir), **self.env}

    def start(self, timeout: float = 60) -> Server:
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            self.command("serve", "--port", str(self.port)),
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("server exited:\n" + "".join(self.output))
            self.output.append(line)
            found = re.search(r"(fs_[a-z0-9]+_[a-z0-9]+)", line)
            if found and not self.admin_key:
                self.admin_key = found.group(1)
            if "Listening on" in line:
                break
        # Keep reading the output so a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not answer /healthz:\n" + "".join(self.output))

    def _drain(self) -> None:
        process = self.process
        if process is None or process.stdout is None:
            return
        for line in process.stdout:
            self.output.append(line)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            self.command(*args), env=self.environment(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def tenant_key(self, tenant: str) -> str:
        """An admin key of `tenant` (made with the CLI, as an operator would)."""
        return self.cli("keys", "create", f"{tenant} admin", "--tenant", tenant, "--admin")

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system), from /proc."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
