"""Large work gives way: a request that turns out large runs its thread at a lower CPU priority until it ends
(frugalsense.priority), in the pool itself, without and with the privilege to raise a priority again, and in a
real server (its threads' nice values read from /proc while a large picture is analysed)."""

from __future__ import annotations

import contextvars
import io
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from _server import Server
from frugalsense.budget import RequestLimits, request_limits, reserve_picture
from frugalsense.ledger import Meter, StageCost
from frugalsense.priority import LowerablePool, lower_priority, supported

pytestmark = pytest.mark.skipif(not supported(), reason="thread priorities are Linux's")


def thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_pool_runs_tasks_in_the_callers_context_and_raises_their_errors() -> None:
    pool = LowerablePool("t", nice=5)
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
    marker.set("the caller's")
    try:
        assert pool.run(marker.get) == "the caller's"
        with pytest.raises(ZeroDivisionError):
            pool.run(lambda: 1 / 0)
        results = [pool.submit(lambda i=i: i * i) for i in range(20)]
        assert [f.result() for f in results] == [i * i for i in range(20)]
        assert 1 <= pool.threads <= 20
    finally:
        pool.close()


def test_a_lowered_thread_gets_its_priority_back_when_its_task_ends() -> None:
    pool = LowerablePool("t", nice=7)
    try:
        base = pool.run(thread_nice)

        def large() -> tuple[bool, int, bool]:
            lowered = lower_priority()
            return lowered, thread_nice(), lower_priority()  # a second call changes nothing

        assert pool.run(large) == (True, min(19, base + 7), False)
        # The next task, on whichever thread, runs at the normal priority again.
        assert [pool.run(thread_nice) for _ in range(5)] == [base] * 5
    finally:
        pool.close()
    assert lower_priority() is False  # outside a pool: never lowered
    assert LowerablePool("off", nice=0).run(lower_priority) is False


UNPRIVILEGED = textwrap.dedent(
    """
    import os, resource, threading
    from frugalsense.priority import LowerablePool, lower_priority  # imported first: the user below reads no files
    resource.setrlimit(resource.RLIMIT_NICE, (0, 0))
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    nice = lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pool = LowerablePool("t", nice=6)
    base = pool.run(nice)
    first = pool.run(lambda: (lower_priority(), nice(), threading.get_native_id()))
    after = pool.run(lambda: (nice(), threading.get_native_id()))
    print(base, first[0], first[1], after[0], pool.retired, first[2] != after[1])
    """
)


def test_without_the_privilege_to_raise_a_priority_the_lowered_thread_is_replaced() -> None:
    """A service without CAP_SYS_NICE cannot give a thread its priority back: the thread ends, a fresh one runs
    the next task at the normal priority."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run(
        [sys.executable, "-c", UNPRIVILEGED],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": src},
        cwd="/",
        check=False,
    )
    assert done.returncode == 0, done.stderr
    base, lowered, during, after, retired, other_thread = done.stdout.split()
    assert lowered == "True" and int(during) == min(19, int(base) + 6)
    assert int(after) == int(base) and retired == "1" and other_thread == "True"


def test_budgets_lower_a_request_once_it_is_large() -> None:
    """A picture over `large_pixels` or a meter past `large_cpu_s` lowers the request's pool thread."""
    pool = LowerablePool("t", nice=4)
    limits = RequestLimits(large_cpu_s=1.0, large_pixels=1_000_000)
    try:
        base = pool.run(thread_nice)

        def picture(width: int, height: int) -> int:
            with request_limits(limits):
                reserve_picture(width, height, "the picture")()
            return thread_nice()

        def spent(cpu_s: float) -> int:
            with request_limits(limits):
                meter = Meter(0.05)
                meter.record(StageCost("ocr", None, cpu_s, 1.0), covered_thread_s=0.0)
                meter.check()
            return thread_nice()

        assert pool.run(lambda: picture(900, 1000)) == base
        assert pool.run(lambda: picture(1000, 1000)) == base + 4
        assert pool.run(lambda: spent(0.9)) == base
        assert pool.run(lambda: spent(1.1)) == base + 4
    finally:
        pool.close()


def nice_values(pid: int) -> list[int]:
    """The nice value of every thread of process `pid` (field 19 of /proc/PID/task/TID/stat)."""
    values = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        values.append(int(stat.rsplit(")", 1)[1].split()[16]))
    return values


def test_the_server_lowers_a_large_request_and_not_a_small_one(tmp_path: Path, model_dir: Path) -> None:
    """A 6,000 x 4,000 picture (24 Mpx, over the default 20 Mpx) analysed by a real server: while it works one
    thread of the server runs at nice 10; before and after, none does. A small photo never lowers a thread."""
    server = Server(tmp_path / "data", model_dir, env={"FRUGALSENSE_LARGE_WORK_NICE": "10"}).start()
    try:
        assert server.process is not None
        pid = server.process.pid
        base = max(nice_values(pid))
        key = server.tenant_key("shop")
        headers = {"X-API-Key": key}
        small = io.BytesIO()
        Image.new("RGB", (640, 480), (120, 90, 60)).save(small, format="JPEG")
        large = io.BytesIO()
        Image.effect_noise((6000, 4000), 40).convert("RGB").save(large, format="JPEG", quality=60)
        seen: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                seen.extend(nice_values(pid))
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            reply = httpx.post(
                f"{server.url}/v1/analyze",
                headers=headers,
                files={"file": ("small.jpg", small.getvalue(), "image/jpeg")},
                data={"features": "labels"},
                timeout=120,
            )
            assert reply.status_code == 200, reply.text
            time.sleep(0.1)
            assert max(seen) == base, "a small photo must not lower a thread"
            reply = httpx.post(
                f"{server.url}/v1/analyze",
                headers=headers,
                files={"file": ("large.jpg", large.getvalue(), "image/jpeg")},
                data={"features": "labels"},
                timeout=300,
            )
            assert reply.status_code == 200, reply.text
        finally:
            stop.set()
            watcher.join()
        assert base + 10 in seen, "the large picture's thread was never lowered"
        assert max(nice_values(pid)) == base, "the lowered thread kept its priority after the request"
    finally:
        server.kill()
