"""An acknowledged write survives `kill -9` of the server in the middle of a load, on SQLite and on PostgreSQL
(tests/_backends.py): a 201 is sent only after the write was committed (and, on SQLite, synced)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from _server import Server
from frugalsense.settings import Settings


def test_acknowledged_enrolments_survive_kill_9(
    tmp_path: Path, model_dir: Path, eval_dir: Path, store_settings: Settings
) -> None:
    env, url = {"FRUGALSENSE_RATE_PER_KEY": "0"}, store_settings.database_url
    server = Server(tmp_path / "data", model_dir, env=env, database_url=url).start()
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    photos = sorted((eval_dir / "faces-lfw" / "images").glob("*/*.jpg"))[:60]
    acknowledged: list[tuple[str, str]] = []  # (person id, face id) whose 201 reached us
    lock = threading.Lock()
    stop = threading.Event()
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as c:
            col = c.post("/v1/collections", json={"name": "door"}).json()["id"]

        def load(worker: int) -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as c:
                for i, photo in enumerate(photos[worker::4]):
                    if stop.is_set():
                        return
                    try:
                        person = c.post(f"/v1/collections/{col}/persons", json={"name": f"p{worker}-{i}"})
                        if person.status_code != 201:
                            continue
                        pid = person.json()["id"]
                        with lock:
                            acknowledged.append((pid, ""))
                        face = c.post(f"/v1/persons/{pid}/faces", files={"file": (photo.name, photo.read_bytes())})
                        if face.status_code == 201:
                            with lock:
                                acknowledged.append((pid, face.json()["face"]["id"]))
                    except httpx.TransportError:
                        return  # the server died under us: exactly the point

        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if sum(1 for _, f in acknowledged if f) >= 10:
                    break
            time.sleep(0.05)
        server.kill(signal.SIGKILL)  # mid-load: requests are in flight
        stop.set()
        for t in threads:
            t.join(timeout=60)
    finally:
        server.kill(signal.SIGKILL)

    with lock:
        persons = {p for p, _ in acknowledged}
        faces = [f for _, f in acknowledged if f]
    assert len(faces) >= 10

    restarted = Server(tmp_path / "data", model_dir, env=env, database_url=url, port=0).start()
    try:
        assert restarted.admin_key == ""  # keys survived: no new first-start key
        with httpx.Client(base_url=restarted.url, headers=headers, timeout=30) as c:
            for pid in persons:
                assert c.get(f"/v1/persons/{pid}").status_code == 200, pid
            for fid in faces:
                assert c.get(f"/v1/faces/{fid}").status_code == 200, fid
            # The restarted server also works: identify against what survived.
            probe = photos[0]
            found = c.post(f"/v1/collections/{col}/identify", files={"file": (probe.name, probe.read_bytes())})
            assert found.status_code == 200
    finally:
        restarted.kill()
