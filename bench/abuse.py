"""The hostile inputs of issue 10, replayed against a real `frugalsense serve` while another tenant works.

    python bench/abuse.py                       # the whole replay at the issue's sizes (about 20 minutes)
    python bench/abuse.py --scale 0.05          # fewer pages, frames, bodies, connections: a quick check
    python bench/abuse.py --only slowloris      # one input, or several: a,b (names: --list)
    python bench/abuse.py --markdown            # the table as Markdown, for the README
    python bench/abuse.py --server-setting large_work_nice=0   # a server setting changed, to compare side by side

The server runs on 127.0.0.1 with a fresh data folder, the shared model cache, no per-key rate limit, and hard
limits on its own process only (address space, default 6 GB; 1,024 open files), so a regression shows as a failed
request, not a dead machine. Two tenants: the victim enrols real faces from faces-deepface and keeps listing its
collections and identifying a photo (a new connection per request) during every input; the attacker, from
127.0.0.2, sends one kind of hostile input at a time, each bounded in time. Per input the table shows the status
codes the attacker saw (503ra: 503 with Retry-After, the designed refusal), the 5xx that are not that refusal
(attacker's and victim's), the server's peak RSS over its level just before the input (VmRSS every 50 ms), the
server's CPU-seconds from the input's start until it went idle (less the victim's own receipts), and the victim's
p95 latencies. Then the victim erases a person and every file under the data folder is scanned for the person's
name, ids and embedding bytes, with the server running and after it stopped.

--scale multiplies counts and durations (pages, frames, connections, requests, audio seconds, faces); the sizes
that make each point (page and frame sides, 48 MiB bodies, 10 MB strings, the over-size upload) stay.
"""

from __future__ import annotations

import argparse
import resource
import secrets
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import _abuse_inputs as hostile  # noqa: E402
import _data  # noqa: E402
from _abuse_inputs import HOSTILES, Hostile, Outcome, Replay, detail, label  # noqa: E402
from _server import ServerProcess, proc_cpu_s, proc_rss_mb  # noqa: E402
from frugalsense.results import Box  # noqa: E402
from frugalsense.settings import Settings  # noqa: E402
from frugalsense.store import DB_FILENAME, NewFace, SQLiteStore  # noqa: E402

VICTIM_TIMEOUT_S = 20.0
SETTLE_S = 8.0
GB = 1024**3
NAMES = [h.name for h in HOSTILES] + ["erasure"]


# -- the server process ------------------------------------------------------------------------------------
# `frugalsense serve` under hard limits of its own, and its /proc readings, come from `bench/_server.py`.


class Sampler(threading.Thread):
    """The server's RSS and CPU-seconds every 50 ms: the peak RSS and the CPU timeline of one input."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_mb = proc_rss_mb(pid) or 0.0
        self.cpu: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            rss, cpu = proc_rss_mb(self.pid), proc_cpu_s(self.pid)
            if rss is None or cpu is None:
                return
            self.peak_mb = max(self.peak_mb, rss)
            self.cpu.append((time.monotonic(), cpu))

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def busy_after(self, since: float) -> float:
        """Seconds after `since` until the server last used more than half a core over a one-second window."""
        last = since
        for (t0, c0), (t1, c1) in zip(self.cpu, self.cpu[20:], strict=False):
            if t0 >= since and c1 - c0 > 0.5 * (t1 - t0):
                last = t1
        return last - since


def wait_idle(pid: int, limit_s: float) -> bool:
    """Wait until the server uses less than a fifth of a core over half a second; False if it is still busy."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = proc_cpu_s(pid)
        time.sleep(0.5)
        after = proc_cpu_s(pid)
        if before is None or after is None:
            return True
        if after - before < 0.1:
            return True
    return False


def is_failure(status: str) -> bool:
    """A 5xx that is not the designed refusal (503 with Retry-After, labelled 503ra), or a valid request the
    server dropped without an answer."""
    return (status.isdigit() and status.startswith("5")) or status in ("ReadError", "RemoteProtocolError")


def percentile(values: list[float], q: float = 95) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# -- the victim tenant -------------------------------------------------------------------------------------


@dataclass
class VictimStats:
    """Latencies of answers and of timeouts (a refusal is no answer: it is counted apart, never as fast)."""

    list_ms: list[float] = field(default_factory=list)
    identify_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # by "list" and "identify"
    receipt_cpu_s: float = 0.0

    def p95(self, what: str) -> str:
        values = self.list_ms if what == "list" else self.identify_ms
        return f"{percentile(values):,.0f}" if values else "-"

    def within(self, what: str, limit_ms: float) -> bool:
        """Every request answered, and the p95 under the limit."""
        values = self.list_ms if what == "list" else self.identify_ms
        return not self.refused[what] and percentile(values) < limit_ms

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s not in ("200",))


class _VictimThreads:
    """Another tenant at work: lists its collections and identifies a photo, each on a new connection."""

    def __init__(self, url: str, key: str, collection_id: str, probe: bytes) -> None:
        self.url, self.key, self.collection_id, self.probe = url, key, collection_id, probe
        self.stats = VictimStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=VICTIM_TIMEOUT_S,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def _loop(self, what: str, pause: float) -> None:
        with self._client() as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    if what == "list":
                        response = client.get("/v1/collections")
                    else:
                        response = client.post(
                            f"/v1/collections/{self.collection_id}/identify",
                            files={"file": ("probe.jpg", self.probe)},
                            data={"keep": "false"},
                        )
                    status = label(response)
                except httpx.TimeoutException:
                    status, response = "timeout", None
                except httpx.TransportError as exc:
                    status, response = type(exc).__name__, None
                elapsed = (time.perf_counter() - start) * 1000
                with self._lock:
                    self.stats.statuses[status] += 1
                    if status[0].isdigit() and status != "200":
                        self.stats.refused[what] += 1
                    else:
                        (self.stats.list_ms if what == "list" else self.stats.identify_ms).append(elapsed)
                    if response is not None and what == "identify" and response.status_code == 200:
                        self.stats.receipt_cpu_s += float(response.json()["receipt"]["cpu_seconds"])
                self._stop.wait(pause)

    def start(self) -> _VictimThreads:
        self.stats, self._stop = VictimStats(), threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=("list", 0.05), daemon=True),
            threading.Thread(target=self._loop, args=("identify", 0.1), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> VictimStats:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=VICTIM_TIMEOUT_S + 5)
        return self.stats


def _victim_process(url: str, key: str, collection_id: str, probe: bytes, stop: Any, out: Any) -> None:
    """The victim's loops in a process of their own, so the attacker's threads (building 48 MiB bodies, opening
    thousands of sockets) never slow the victim's own client down: only the server can."""
    threads = _VictimThreads(url, key, collection_id, probe).start()
    stop.wait()
    out.put(threads.stop())


class Victim:
    """The victim tenant at work, measured from a separate process (see `_victim_process`)."""

    def __init__(self, url: str, key: str, collection_id: str, probe: bytes) -> None:
        import multiprocessing

        self.url, self.key, self.collection_id, self.probe = url, key, collection_id, probe
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._stop: Any = None
        self._out: Any = None

    def start(self) -> Victim:
        self._stop, self._out = self._context.Event(), self._context.Queue()
        self._process = self._context.Process(
            target=_victim_process,
            args=(self.url, self.key, self.collection_id, self.probe, self._stop, self._out),
            daemon=True,
        )
        self._process.start()
        return self

    def stop(self) -> VictimStats:
        self._stop.set()
        stats: VictimStats = self._out.get(timeout=VICTIM_TIMEOUT_S + 60)
        self._process.join(timeout=10)
        return stats


# -- setting the scene -------------------------------------------------------------------------------------


def deepface_people() -> list[tuple[str, list[Path]]]:
    """faces-deepface identities with at least three photos, by name."""
    by_person: dict[str, list[Path]] = {}
    for path, who in sorted(_data.deepface_identities().items()):
        by_person.setdefault(who, []).append(path)
    people = [(who, paths) for who, paths in sorted(by_person.items()) if len(paths) >= 3]
    if len(people) < 7:
        raise SystemExit("faces-deepface needs at least 7 people with 3 photos each")
    return people


def bulk_import(data_dir: Path, tenant_name: str, n: int) -> str:
    """`n` persons with one synthetic face each in a new collection of the tenant (the server is not running)."""
    store = SQLiteStore(data_dir / DB_FILENAME)
    try:
        tenant = next(t for t in store.list_tenants() if t.name == tenant_name)
        collection = store.create_collection(tenant.id, "bulk")
        rng = np.random.default_rng(0)
        for offset in range(0, n, 5000):
            size = min(5000, n - offset)
            persons = store.create_persons(tenant.id, collection.id, [f"bulk {offset + i}" for i in range(size)])
            vectors = rng.standard_normal((size, 128)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.add_faces(
                tenant.id,
                [
                    NewFace(
                        embedding=vector,
                        model="sface",
                        box=Box(0, 0, 1, 1),
                        landmarks=[(0.0, 0.0)] * 5,
                        det_score=1.0,
                        source_sha256="",
                        source_name="bulk",
                        collection_id=collection.id,
                        person_id=person.id,
                        enrolled=True,
                    )
                    for person, vector in zip(persons, vectors, strict=True)
                ],
            )
        return collection.id
    finally:
        store.close()


def _must(response: httpx.Response, what: str) -> Any:
    if not response.is_success:
        raise SystemExit(f"set-up failed: {what} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def _enrolled_person(c: httpx.Client, collection: str, name: str, photo: Path) -> str:
    person = _must(c.post(f"/v1/collections/{collection}/persons", json={"name": name}), f"create {name}")["id"]
    _must(c.post(f"/v1/persons/{person}/faces", files={"file": (photo.name, photo.read_bytes())}), f"enrol {name}")
    return str(person)


def set_the_scene(replay: Replay) -> None:
    """The victim's staff (four people and a witness to erase later) and the attacker's own small gallery."""
    people = deepface_people()
    with replay.client(replay.victim_key, source="127.0.0.1") as v:
        v.timeout = httpx.Timeout(120)
        replay.victim_collection = _must(v.post("/v1/collections", json={"name": "staff"}), "a collection")["id"]
        for who, paths in people[:4]:
            _enrolled_person(v, replay.victim_collection, who, paths[0])
        replay.probe = people[0][1][1].read_bytes()
        name = f"Witness {secrets.token_hex(6)}"
        paths = people[4][1]
        person = _enrolled_person(v, replay.victim_collection, name, paths[0])
        item = _must(
            v.post(
                "/v1/index",
                files={"file": (paths[1].name, paths[1].read_bytes())},
                data={"collection_id": replay.victim_collection},
            ),
            "index a photo of the witness",
        )
        _must(
            v.post(
                f"/v1/collections/{replay.victim_collection}/identify",
                files={"file": (paths[2].name, paths[2].read_bytes())},
            ),
            "identify the witness",
        )
        replay.witness = {"id": person, "name": name, "item": item.get("item_id") or item.get("id")}
    with replay.client() as a:
        a.timeout = httpx.Timeout(120)
        replay.attacker_collection = _must(a.post("/v1/collections", json={"name": "gate"}), "a collection")["id"]
        replay.attacker_person = _enrolled_person(a, replay.attacker_collection, "visitor", people[5][1][0])
        replay.photo = people[5][1][1].read_bytes()
        replay.fresh_photos = (people[6][1][0].read_bytes(), people[6][1][1].read_bytes())


def warm_up(replay: Replay) -> None:
    """Load every model family once (faces, labels, moderation, text, speech), so an input pays only for itself."""
    voice = (ROOT / "src" / "frugalsense" / "data" / "voice-note.ogg").read_bytes()
    with replay.client() as a:
        a.timeout = httpx.Timeout(300)
        for name, data in (
            ("face.jpg", replay.photo),
            ("page.pdf", hostile.blank_pdf(1, 300)),
            ("voice.ogg", voice),
        ):
            a.post("/v1/analyze", files={"file": (name, data)})


# -- one input, measured -----------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    statuses: Counter[str]
    failures: int
    idle_mb: float
    over_mb: float
    cpu_s: float
    victim: VictimStats
    wall_s: float
    note: str


def _bound(hostile_input: Hostile, scale: float, patience: float) -> float:
    return max(30.0, hostile_input.bound_s * max(0.4, min(1.0, scale))) * patience


def _run_guarded(
    hostile_input: Hostile, replay: Replay, payload: Any, deadline: float, out: list[Outcome]
) -> None:
    try:
        out.append(hostile_input.run(replay, payload, deadline))
    except Exception as exc:  # the bench records a broken input as a row, then goes on
        out.append(Outcome(Counter({"bench-error": 1}), note=repr(exc)[:160]))


@dataclass
class Bench:
    """The running server, what the inputs need, the victim, and the server's RSS at rest after warm-up."""

    server: ServerProcess
    replay: Replay
    victim: Victim
    idle_mb: float = 0.0
    patience: float = 1.0

    def restart(self) -> None:
        """A new server process on the same data folder, its models loaded again before the next input."""
        self.server.restart()
        warm_up(self.replay)


def replay_one(bench: Bench, hostile_input: Hostile) -> Row:
    server, replay, victim, notes = bench.server, bench.replay, bench.victim, []
    if not server.alive():
        bench.restart()
        notes.append("server restarted first")
    payload = hostile_input.prepare(replay)
    wait_idle(server.pid, SETTLE_S)
    idle_mb, cpu_before = proc_rss_mb(server.pid) or 0.0, proc_cpu_s(server.pid) or 0.0
    sampler = Sampler(server.pid)
    sampler.start()
    victim.start()
    start, bound = time.monotonic(), _bound(hostile_input, replay.scale, bench.patience)
    out: list[Outcome] = []
    worker = threading.Thread(
        target=_run_guarded, args=(hostile_input, replay, payload, start + bound, out), daemon=True
    )
    worker.start()
    worker.join(bound + 10)
    outcome = out[0] if out else Outcome(Counter({"unfinished": 1}), note=f"still running after {bound:.0f} s")
    time.sleep(max(0.0, start + 3 - time.monotonic()))  # a few victim samples even for instant inputs
    stats = victim.stop()
    wall = time.monotonic() - start
    settled = wait_idle(server.pid, SETTLE_S) if server.alive() else True
    sampler.stop()
    cpu_after = sampler.cpu[-1][1] if sampler.cpu else cpu_before
    if outcome.left_at is not None:
        notes.append(f"server busy {sampler.busy_after(outcome.left_at):.0f} s after the clients left")
    if stats.errors:
        notes.append("victim got " + _statuses(Counter({k: n for k, n in stats.statuses.items() if k != "200"})))
    notes += _recover(bench, settled)
    failures = sum(n for s, n in (outcome.statuses + stats.statuses).items() if is_failure(s))
    return Row(
        hostile_input.name,
        outcome.statuses,
        failures,
        idle_mb,
        sampler.peak_mb - idle_mb,
        cpu_after - cpu_before - stats.receipt_cpu_s,
        stats,
        wall,
        hostile.join(outcome.note, *notes),
    )


def _recover(bench: Bench, settled: bool) -> list[str]:
    """Restart a server that died, kept working past the bound, or kept over 1 GB more than at the start."""
    server = bench.server
    if not server.alive():
        code = server.process.returncode if server.process is not None else "?"
        note = f"server DIED (exit {code}) {server.tail()}".strip()
    elif not settled:
        note = "server still busy after the bound: restarted"
    elif (proc_rss_mb(server.pid) or 0.0) > bench.idle_mb + 1000:
        note = f"server kept {proc_rss_mb(server.pid):,.0f} MB: restarted"
    else:
        return []
    bench.restart()
    return [note]


# -- erasure -----------------------------------------------------------------------------------------------


def witness_needles(db: Path, person_id: str, name: str) -> dict[str, list[bytes]]:
    """The bytes that must be gone once the person is erased: their name, ids and every embedding."""
    needles: dict[str, list[bytes]] = {"name": [name.encode()], "id": [person_id.encode()], "embedding": []}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        faces = conn.execute("SELECT id, embedding FROM faces WHERE person_id = ?", (person_id,)).fetchall()
        needles["id"] += [str(face_id).encode() for face_id, _ in faces]
        needles["embedding"] += [bytes(blob) for _, blob in faces]
        marks = ",".join("?" * len(faces))
        rows = conn.execute(
            f"SELECT vector FROM face_embeddings WHERE face_id IN ({marks})", [f for f, _ in faces]
        ).fetchall()
        needles["embedding"] += [bytes(blob) for (blob,) in rows]
    except sqlite3.Error as exc:
        print(f"warning: could not read the witness's embeddings: {exc}", file=sys.stderr)
    finally:
        conn.close()
    return needles


def scan(folder: Path, needles: dict[str, list[bytes]]) -> tuple[Counter[str], Counter[str]]:
    """Occurrences of each kind of needle in every file under `folder`, and the files they were found in."""
    hits: Counter[str] = Counter()
    files: Counter[str] = Counter()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for kind, values in needles.items():
            found = sum(data.count(value) for value in values if value)
            if found:
                hits[kind] += found
                files[str(path.relative_to(folder))] += found
    return hits, files


def _hits(when: str, found: tuple[Counter[str], Counter[str]]) -> str:
    hits, files = found
    total = sum(hits.values())
    where = ", ".join(f"{f} {n}" for f, n in files.most_common(4))
    kinds = ", ".join(f"{k} {n}" for k, n in hits.items())
    return f"erasure: {total} hits under the data folder {when}" + (f" ({kinds}; in {where})" if total else "")


def erase_and_scan(bench: Bench) -> list[str]:
    """Erase the victim's witness, then look for any byte of them under the data folder (first, as a control,
    before the erasure: a scan that finds nothing there proves nothing)."""
    replay, witness, data_dir = bench.replay, bench.replay.witness, bench.server.data_dir
    needles = witness_needles(data_dir / DB_FILENAME, witness["id"], witness["name"])
    before = scan(data_dir, needles)
    deadline = time.monotonic() + 120
    with replay.client(replay.victim_key, source="127.0.0.1") as v:
        status, response = replay.call(v, "DELETE", f"/v1/persons/{witness['id']}", deadline)
        item_status, item = replay.call(v, "GET", f"/v1/items/{witness['item']}", deadline)
    in_item = item is not None and witness["name"] in item.text
    running = scan(data_dir, needles)
    bench.server.stop()
    stopped = scan(data_dir, needles)
    return [
        f"erasure: DELETE /v1/persons answered {hostile.join(status, detail(response))}; the indexed item then "
        f"({item_status}) {'still names' if in_item else 'does not name'} the person",
        "erasure: looking for " + ", ".join(f"{len(v)} {k}" for k, v in needles.items()),
        _hits("before the erasure (control)", before),
        _hits("after it, server running", running),
        _hits("after the server stopped", stopped),
    ]


# -- the table ---------------------------------------------------------------------------------------------

COLUMNS = [
    "input",
    "attacker saw",
    "5xx",
    "RSS idle MB",
    "peak over idle MB",
    "CPU-s",
    "victim list p95 ms",
    "victim identify p95 ms",
    "wall s",
    "note",
]


def _statuses(statuses: Counter[str]) -> str:
    return " ".join(s if n == 1 else f"{s}x{n}" for s, n in statuses.most_common()) or "-"


def _cells(row: Row) -> list[str]:
    return [
        row.name,
        _statuses(row.statuses),
        str(row.failures),
        f"{row.idle_mb:,.0f}",
        f"{row.over_mb:+,.0f}",
        f"{row.cpu_s:.1f}",
        row.victim.p95("list"),
        row.victim.p95("identify"),
        f"{row.wall_s:.0f}",
        row.note,
    ]


def render(idle: VictimStats, idle_mb: float, rows: list[Row], markdown: bool) -> str:
    """The table: an idle row (no attack), then one row per input; Markdown or aligned text."""
    at_rest = ["idle (no attack)", "-", str(idle.errors), f"{idle_mb:,.0f}", "", ""]
    table = [[*at_rest, idle.p95("list"), idle.p95("identify"), "", ""], *(_cells(row) for row in rows)]
    if markdown:
        align = ["---" if column in ("input", "attacker saw", "note") else "---:" for column in COLUMNS]
        lines = [COLUMNS, align] + [[c.replace("|", "/") for c in cells] for cells in table]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(cells[i]) for cells in [COLUMNS, *table]) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)) + "  " + cells[-1]
        for cells in [COLUMNS, *table]
    )


def verdicts(idle: VictimStats, rows: list[Row]) -> list[str]:
    """The issue's targets, input by input."""
    idle_identify = percentile(idle.identify_ms)

    def failing(test: Callable[[Row], bool]) -> str:
        bad = [r.name for r in rows if test(r)]
        return f"{len(rows) - len(bad)}/{len(rows)} inputs" + (f" (not: {', '.join(bad)})" if bad else "")

    return [
        "target RSS at most 500 MB over idle: " + failing(lambda r: r.over_mb > 500),
        "target victim list p95 under 200 ms, none refused: "
        + failing(lambda r: not r.victim.within("list", 200)),
        f"target victim identify p95 under 2 x idle ({2 * idle_identify:,.0f} ms), none refused: "
        + failing(lambda r: not r.victim.within("identify", 2 * idle_identify)),
        "target zero 5xx (503 with Retry-After excepted): " + failing(lambda r: r.failures > 0),
    ]


# -- main --------------------------------------------------------------------------------------------------


def measure_idle(victim: Victim, seconds: float = 8.0) -> VictimStats:
    victim.start()
    time.sleep(seconds)
    return victim.stop()


def _names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(f"no input named {', '.join(unknown)}; see --list")
    return names


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", type=_names, help="replay these inputs only, comma-separated (erasure: the erasure check)"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply counts and durations (0.05: quick)")
    parser.add_argument("--faces", type=int, help="faces of the collection deleted (default 20,000 x scale)")
    parser.add_argument("--patience", type=float, default=1.0, help="multiply every input's time bound")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="the server's address-space limit")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--list", action="store_true", help="list the inputs and stop")
    parser.add_argument(
        "--server-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a FRUGALSENSE_ setting for the server (repeat), e.g. large_work_nice=0 to compare side by side",
    )
    args = parser.parse_args(argv)
    try:
        args.server_env = {
            f"FRUGALSENSE_{name.strip().upper()}": value
            for name, value in (item.split("=", 1) for item in args.server_setting)
        }
    except ValueError:
        parser.error("--server-setting takes NAME=VALUE, e.g. large_work_nice=0")
    return args


def _new_key(server: ServerProcess, tenant: str) -> str:
    return server.cli("keys", "create", "admin", "--tenant", tenant, "--admin").splitlines()[-1]


def _start(data_dir: Path, args: argparse.Namespace, bulk: bool) -> Bench:
    """Two tenants (and the attacker's big collection, imported while no server runs), then the server."""
    settings = Settings()
    server = ServerProcess(data_dir, settings.model_dir, int(args.memory_gb * GB), env=args.server_env)
    replay = Replay(
        port=server.port, server_cpu=lambda: proc_cpu_s(server.pid), scale=args.scale, settings=settings
    )
    replay.victim_key, replay.attacker_key = _new_key(server, "victim-shop"), _new_key(server, "attacker-shop")
    if bulk:
        replay.bulk_faces = args.faces if args.faces is not None else replay.count(20_000)
        started = time.monotonic()
        replay.bulk_collection = bulk_import(data_dir, "attacker-shop", replay.bulk_faces)
        _progress(f"{replay.bulk_faces:,} faces imported in {time.monotonic() - started:.1f} s")
    server.start()
    return Bench(server, replay, Victim(server.url, replay.victim_key, "", b""), patience=args.patience)


def _replay_all(bench: Bench, selected: list[Hostile], args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Every selected input in turn, then the erasure check; a server that cannot start again ends it early."""
    rows: list[Row] = []
    try:
        for i, hostile_input in enumerate(selected, 1):
            bound = _bound(hostile_input, args.scale, args.patience)
            _progress(f"[{i}/{len(selected)}] {hostile_input.name}, bound {bound:.0f} s")
            rows.append(replay_one(bench, hostile_input))
            _progress("    " + "  ".join(_cells(rows[-1])[1:]))
        return rows, erase_and_scan(bench) if args.only is None or "erasure" in args.only else []
    except (SystemExit, KeyboardInterrupt) as exc:
        return rows, [f"the replay stopped early: {str(exc)[:300] or type(exc).__name__}"]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.list:
        print("\n".join(NAMES))
        return 0
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # thousands of slow connections from this side
    selected = [h for h in HOSTILES if args.only is None or h.name in args.only]
    with TemporaryDirectory(prefix="frugalsense-abuse-") as tmp:
        bench = _start(Path(tmp) / "data", args, any(h.name == "delete-collection" for h in selected))
        try:
            set_the_scene(bench.replay)
            warm_up(bench.replay)
            bench.victim.collection_id, bench.victim.probe = bench.replay.victim_collection, bench.replay.probe
            wait_idle(bench.server.pid, SETTLE_S)
            bench.idle_mb = proc_rss_mb(bench.server.pid) or 0.0
            idle = measure_idle(bench.victim)
            _progress(
                f"idle: RSS {bench.idle_mb:,.0f} MB, victim p95 {idle.p95('list')} ms (list), "
                f"{idle.p95('identify')} ms (identify)"
            )
            rows, erasure = _replay_all(bench, selected, args)
        finally:
            bench.server.stop()
    print(render(idle, bench.idle_mb, rows, args.markdown))
    print()
    print("\n".join([*verdicts(idle, rows), *erasure, f"server restarts: {bench.server.restarts}"]))
    return 0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
