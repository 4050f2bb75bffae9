"""A real `frugalsense serve` on 127.0.0.1 for the bench scripts, optionally under hard limits of its own.

    server = ServerProcess(data_dir, Settings().model_dir, env={"FRUGALSENSE_WORKERS": "2"}).start()
    key = server.new_key("default")          # an admin key of tenant "default", made with the CLI
    ...
    server.stop()

The server starts from a clean environment: no FRUGALSENSE_* variable of the caller leaks in, the model cache is
the one given, the per-key rate limit is off (a bench sends more than a person would), and `env` comes on top.
Limits (`memory_limit` bytes of address space, `open_files`) apply to the server process only, so a regression
shows as a failed request, not a dead machine.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["ServerProcess", "free_port", "proc_cpu_s", "proc_rss_mb"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def proc_rss_mb(pid: int, *, peak: bool = False) -> float | None:
    """Resident memory of the process now (or its peak, VmHWM), from /proc; None once it has gone."""
    try:
        return int(_status(pid)["VmHWM" if peak else "VmRSS"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU-seconds of the process so far; None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class ServerProcess:
    """`frugalsense serve` on a free port of 127.0.0.1, its output kept (the last 300 lines) for diagnosis."""

    data_dir: Path
    model_dir: Path
    memory_limit: int | None = None
    open_files: int | None = 1024
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    output: deque[str] = field(default_factory=lambda: deque(maxlen=300))
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "frugalsense.cli", "--data-dir", str(self.data_dir), *args]

    def _environment(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("FRUGALSENSE_")}
        return {
            **clean,
            "FRUGALSENSE_MODEL_CACHE": str(self.model_dir),
            "FRUGALSENSE_RATE_PER_KEY": "0",
            **self.env,
        }

    def cli(self, *args: str) -> str:
        """Run `frugalsense ARGS` on the same data folder and environment; its standard output."""
        done = subprocess.run(
            self._command(*args), env=self._environment(), capture_output=True, text=True, timeout=120
        )
        if done.returncode:
            raise SystemExit(f"frugalsense {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout.strip()

    def new_key(self, tenant: str = "default") -> str:
        """A new admin key of `tenant` (the tenant is made if it is new), as an operator would make it."""
        return self.cli("keys", "create", "bench admin", "--tenant", tenant, "--admin").splitlines()[-1]

    def start(self, timeout: float = 120) -> ServerProcess:
        """Start the server and wait until /healthz answers 200."""
        self.process = subprocess.Popen(
            self._command("serve", "--port", str(self.port)),
            env=self._environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if self.memory_limit is not None:
            resource.prlimit(self.process.pid, resource.RLIMIT_AS, (self.memory_limit, self.memory_limit))
        if self.open_files is not None:
            resource.prlimit(self.process.pid, resource.RLIMIT_NOFILE, (self.open_files, self.open_files))
        # Keep reading the output so a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("the server exited at start:\n" + "".join(self.output))
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise SystemExit("the server did not answer /healthz:\n" + "".join(self.output))

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after 20 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def tail(self, lines: int = 3) -> str:
        """The last error lines of the server's output, for a table's note column."""
        interesting = [x.strip() for x in self.output if "Error" in x or "Traceback" in x or "Too many" in x]
        return " | ".join(interesting[-lines:])[:200]
