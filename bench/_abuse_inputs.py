"""The hostile inputs of bench/abuse.py: each made in memory (never stored), sent by the attacker tenant, and
what came back. A raw HTTP exchange sends what an ordinary client refuses to: made-up methods, abandoned uploads,
chunked bodies past the limit."""

from __future__ import annotations

import asyncio
import base64
import fractions
import io
import json
import secrets
import select
import socket
import subprocess
import threading
import time
import wave
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import av
import httpx
import numpy as np
from PIL import Image

from frugalsense.settings import Settings

ATTACKER_ADDRESS = "127.0.0.2"  # loopback too: the server tells the attacker's address from the victim's
FLOODER_ADDRESS = "127.0.0.3"  # failed keys come from a third address, so their limit touches nobody else
MIB = 1024**2

SPEECH = (
    "The delivery arrived late on Tuesday, so we moved the stock count to Wednesday morning. "
    "Please call the supplier about the missing boxes and ask for a new invoice before Friday. "
    "The front desk closes at six, and the keys for the store room are in the top drawer."
)


def blank_pdf(pages: int, side_pt: int) -> bytes:
    """A valid PDF of `pages` square pages `side_pt` points wide, sharing one MediaBox and one content stream: a
    grey square at a random place, so no two files share their bytes or their looks (no cache answers for another).
    """
    x, y = (secrets.randbelow(side_pt // 2) for _ in range(2))
    drawing = b"0.6 g %d %d %d %d re f" % (x, y, side_pt // 4, side_pt // 4)
    objects = [b"<</Type/Catalog/Pages 2 0 R>>"]
    kids = b" ".join(b"%d 0 R" % (4 + i) for i in range(pages))
    objects.append(b"<</Type/Pages/MediaBox[0 0 %d %d]/Count %d/Kids[%s]>>" % (side_pt, side_pt, pages, kids))
    objects.append(b"<</Length %d>>stream\n%s\nendstream" % (len(drawing), drawing))
    objects += [b"<</Type/Page/Parent 2 0 R/Contents 3 0 R>>"] * pages
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj%s endobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def big_frame_video(frames: int, width: int, interval_s: float = 2.0) -> bytes:
    """An H.264 MP4 of `frames` nearly flat 16:9 frames `width` pixels wide, one every `interval_s` seconds."""
    height = width * 9 // 16 // 2 * 2
    picture = np.zeros((height, width, 3), np.uint8)
    picture[:] = (40, 90, 160)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fractions.Fraction(1) / fractions.Fraction(interval_s))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "40"}
        for i in range(frames):
            picture[:64, :64] = i * 17 % 256  # frames differ a little, so none is skipped as a duplicate
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def flat_png(side: int) -> bytes:
    """A flat grey PNG `side` x `side`: a few hundred KB that decode to side*side*3 bytes."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (128, 128, 128)).save(buffer, format="PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


@cache
def _speech_pcm() -> tuple[np.ndarray, int]:
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-s", "160", SPEECH], capture_output=True, check=True, timeout=60
    ).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), np.int16)
    return samples, rate


def speech_ogg(seconds: float, bitrate: int = 8000) -> bytes:
    """`seconds` of synthetic speech (espeak-ng, repeated) as Opus in Ogg at a low bit rate: small and long."""
    pcm, rate = _speech_pcm()
    total = int(seconds * rate)
    samples = np.tile(pcm, -(-total // len(pcm)))[:total]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=48000)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        step = rate * 4
        for start in range(0, total, step):
            frame = av.AudioFrame.from_ndarray(
                samples[start : start + step].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


@cache
def _base64_zeros(n: int) -> bytes:
    return base64.b64encode(bytes(n))


def padded_base64_parts(photo: bytes, size: int) -> list[bytes]:
    """A JSON upload body of about `size` bytes in three parts: a real photo with a unique tag after its end,
    padded with zeros (decoders stop at the photo's end). The zeros' part is shared by every call, never copied."""
    lead = photo + secrets.token_bytes(16)
    lead += bytes(-len(lead) % 3)  # whole base64 quanta on both sides, so the two encodings join into one
    zeros = max(0, size * 3 // 4 - len(lead))
    return [
        b'{"name": "padded.jpg", "features": "faces", "file": "' + base64.b64encode(lead),
        _base64_zeros(zeros - zeros % 3),
        b'"}',
    ]


def nested_json(depth: int) -> bytes:
    """A JSON array nested `depth` deep."""
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> str:
    """A JSON object nested `depth` deep, as text (json.dumps would hit the recursion limit first)."""
    return '{"a": ' * depth + "1" + "}" * depth


def multipart_head(boundary: str, field_name: str, filename: str, media_type: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; filename="{filename}"\r\n'
        f"Content-Type: {media_type}\r\n\r\n"
    ).encode()


def multipart_body(boundary: str, data: bytes, filename: str, media_type: str) -> bytes:
    """One file part named 'file', whole."""
    return multipart_head(boundary, "file", filename, media_type) + data + f"\r\n--{boundary}--\r\n".encode()


def chunked(parts: Iterable[bytes]) -> Iterator[bytes]:
    """HTTP/1.1 chunked transfer coding of `parts`, with the closing zero-size chunk."""
    for part in parts:
        if part:
            yield b"%x\r\n" % len(part) + part + b"\r\n"
    yield b"0\r\n\r\n"


def zeros_in_parts(total: int, part: int = 1 << 20) -> Iterator[bytes]:
    block = bytes(part)
    for start in range(0, total, part):
        yield block[: min(part, total - start)]


@dataclass
class Reply:
    """What came back on a raw connection: a status (0 when none), headers, the start of the body, or an error."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    @property
    def label(self) -> str:
        if self.status == 503 and "retry-after" in self.headers:
            return "503ra"
        return str(self.status) if self.status else (self.error or "no-reply")


def _parse(raw: bytes) -> Reply:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return Reply(error="bad-reply", body=raw[:200])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return Reply(status, headers, body)


def _read_reply(sock: socket.socket, deadline: float, limit: int = 1 << 20) -> Reply:
    raw = b""
    while time.monotonic() < deadline and len(raw) < limit:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return _parse(raw) if raw else Reply(error="timeout")
        except OSError as exc:
            return _parse(raw) if raw else Reply(error=type(exc).__name__)
        if not chunk:
            break
        raw += chunk
        _, sep, body = raw.partition(b"\r\n\r\n")
        if sep:
            reply = _parse(raw)
            length = int(reply.headers.get("content-length", "-1") or -1)
            if 0 <= length <= len(body):
                return reply
    return _parse(raw) if raw else Reply(error="closed" if time.monotonic() < deadline else "timeout")


def exchange(
    address: tuple[str, int],
    head: bytes,
    body: Iterable[bytes | memoryview] = (),
    *,
    deadline: float,
    source: str = "",
    read: bool = True,
) -> Reply:
    """Send `head` then each part of `body` on one new connection, then read the reply (unless `read` is False:
    the client walks away at once). A reply that arrives early (a 413 half-way) is read and returned."""
    if time.monotonic() >= deadline:
        return Reply(error="skipped")
    try:
        sock = socket.create_connection(
            address, timeout=max(0.1, deadline - time.monotonic()), source_address=(source, 0) if source else None
        )
    except OSError as exc:
        return Reply(error=f"connect-{type(exc).__name__}")
    with sock:
        try:
            sock.sendall(head)
            for part in body:
                if select.select([sock], [], [], 0)[0]:
                    return _read_reply(sock, deadline)
                if time.monotonic() > deadline:
                    return Reply(error="timeout")
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                sock.sendall(part)
        except TimeoutError:
            return Reply(error="timeout")
        except OSError as exc:  # the server closed on us mid-body: its reply may already be waiting
            reply = _read_reply(sock, min(deadline, time.monotonic() + 2))
            return reply if reply.status else Reply(error=type(exc).__name__)
        if not read:
            return Reply(error="abandoned")
        return _read_reply(sock, deadline)


# -- what a status means -----------------------------------------------------------------------------------


def label(response: httpx.Response) -> str:
    if response.status_code == 503 and "retry-after" in response.headers:
        return "503ra"
    return str(response.status_code)


def detail(response: httpx.Response | None, limit: int = 70) -> str:
    if response is None or response.status_code < 400:
        return ""
    try:
        text = str(response.json().get("detail", ""))
    except (ValueError, AttributeError):
        text = response.text
    return repr(text[:limit])


# -- the replay --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one hostile input got back."""

    statuses: Counter[str] = field(default_factory=Counter)
    note: str = ""
    left_at: float | None = None  # when the clients walked away, for "busy N s after"

    def add(self, status: str) -> str:
        self.statuses[status] += 1
        return status


@dataclass
class Replay:
    """Everything the inputs need: the server's port and CPU clock, both tenants, their photos, the scale."""

    port: int
    server_cpu: Callable[[], float | None]
    scale: float
    settings: Settings
    victim_key: str = ""
    attacker_key: str = ""
    victim_collection: str = ""
    attacker_collection: str = ""
    attacker_person: str = ""
    bulk_collection: str = ""
    bulk_faces: int = 0
    probe: bytes = b""
    photo: bytes = b""
    fresh_photos: tuple[bytes, bytes] = (b"", b"")
    witness: dict[str, Any] = field(default_factory=dict)

    def count(self, n: int, low: int = 1) -> int:
        return max(low, round(n * self.scale))

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def head(self, method: str, path: str, headers: dict[str, str], key: str | None = None) -> bytes:
        """The request line and headers of a raw request, with the attacker's key unless told otherwise."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines.append(f"Authorization: Bearer {key or self.attacker_key}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    @contextmanager
    def client(self, key: str | None = None, source: str = ATTACKER_ADDRESS) -> Iterator[httpx.Client]:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {key or self.attacker_key}"},
            transport=transport,
        ) as c:
            yield c

    def call(
        self, client: httpx.Client, method: str, path: str, deadline: float, **kwargs: Any
    ) -> tuple[str, httpx.Response | None]:
        """One request bounded by `deadline`: its status (or what went wrong) and the response."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "skipped", None
        try:
            response = client.request(method, path, timeout=remaining, **kwargs)
        except httpx.TimeoutException:
            return "timeout", None
        except httpx.TransportError as exc:
            return type(exc).__name__, None
        return label(response), response


@dataclass(frozen=True)
class Hostile:
    """One kind of hostile input: `prepare` makes its bytes (before measuring), `run` sends them by a deadline."""

    name: str
    bound_s: float
    run: Callable[[Replay, Any, float], Outcome]
    prepare: Callable[[Replay], Any] = lambda replay: None


def _upload(
    replay: Replay, path: str, data: bytes, filename: str, deadline: float, *, fields: dict[str, str] | None = None
) -> tuple[Outcome, httpx.Response | None]:
    outcome = Outcome()
    with replay.client() as c:
        status, response = replay.call(
            c, "POST", path, deadline, files={"file": (filename, data)}, data=fields or {}
        )
    outcome.add(status)
    return outcome, response


def _receipt_cpu(response: httpx.Response | None) -> str:
    if response is None or response.status_code >= 400:
        return ""
    try:
        return f"receipt {float(response.json()['receipt']['cpu_seconds']):.1f} CPU-s"
    except (ValueError, KeyError, TypeError):
        return ""


def join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# -- 1. pages and frames -----------------------------------------------------------------------------------


def _pdf(pages: int) -> Callable[[Replay], bytes]:
    return lambda replay: blank_pdf(replay.count(pages, 2), 3700)


def _pages(data: bytes) -> int:
    return data.count(b"/Type/Page/")


def run_pdf_analyze(replay: Replay, pdf: bytes, deadline: float) -> Outcome:
    outcome, response = _upload(replay, "/v1/analyze", pdf, "blank.pdf", deadline)
    outcome.note = join(f"{len(pdf):,} B, {_pages(pdf)} pages", detail(response), _receipt_cpu(response))
    return outcome


def run_pdf_compare(replay: Replay, pdf: bytes, deadline: float) -> Outcome:
    outcome = Outcome()
    with replay.client() as c:
        status, response = replay.call(
            c,
            "POST",
            "/v1/faces/compare",
            deadline,
            files={"a": ("blank.pdf", pdf), "b": ("face.jpg", replay.photo)},
        )
    outcome.add(status)
    outcome.note = join(f"{len(pdf):,} B, {_pages(pdf)} pages", detail(response))
    return outcome


def run_pdf_identify(replay: Replay, pdf: bytes, deadline: float) -> Outcome:
    path = f"/v1/collections/{replay.attacker_collection}/identify"
    outcome, response = _upload(replay, path, pdf, "blank.pdf", deadline, fields={"keep": "false"})
    outcome.note = join(f"{len(pdf):,} B, {_pages(pdf)} pages", detail(response))
    return outcome


def run_pdf_twice(replay: Replay, pdf: bytes, deadline: float) -> Outcome:
    second = blank_pdf(_pages(pdf), 3700)  # the same size, other bytes: the cache cannot answer the second
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda data: run_pdf_analyze(replay, data, deadline), (pdf, second)))
    outcome = Outcome(results[0].statuses + results[1].statuses)
    outcome.note = join(f"two at once, {len(pdf):,} B each", results[0].note.partition("; ")[2])
    return outcome


def make_video(replay: Replay) -> bytes:
    return big_frame_video(replay.count(12, 2), 7680, replay.settings.video_frame_interval_s)


def run_video(replay: Replay, video: bytes, deadline: float) -> Outcome:
    outcome, response = _upload(replay, "/v1/analyze", video, "frames.mp4", deadline)
    outcome.note = join(f"{len(video):,} B, {replay.count(12, 2)} frames of 7680x4320", detail(response))
    return outcome


# -- 2. time: abandoned work and long audio ----------------------------------------------------------------


def run_abandoned(replay: Replay, png: bytes, deadline: float) -> Outcome:
    boundary, outcome = "abandon" + secrets.token_hex(8), Outcome()
    for _ in range(replay.count(10)):
        body = multipart_body(boundary, png + secrets.token_bytes(16), "huge.png", "image/png")  # no two alike
        content = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(len(body))}
        head = replay.head("POST", "/v1/analyze", content)
        reply = exchange(replay.address, head, [body], deadline=deadline, source=ATTACKER_ADDRESS, read=False)
        outcome.add(reply.label)
    outcome.left_at = time.monotonic()
    # Watch while the server works on for nobody (up to 30 s): the victim is measured meanwhile.
    watch_until = min(outcome.left_at + 30, deadline - 1)
    while time.monotonic() < watch_until:
        before = replay.server_cpu() or 0.0
        time.sleep(1)
        if (replay.server_cpu() or 0.0) - before < 0.5 and time.monotonic() - outcome.left_at > 3:
            break
    outcome.note = f"{sum(outcome.statuses.values())} x {len(png):,} B PNG of 7700x7700, dropped after sending"
    return outcome


def _speech(seconds_of: Callable[[Replay], float], bitrate: int) -> Callable[[Replay], bytes]:
    return lambda replay: speech_ogg(seconds_of(replay), bitrate)


def _five_minutes(replay: Replay) -> float:
    return max(10.0, 300.0 * replay.scale)


def _at_the_limit(replay: Replay) -> float:
    return max(10.0, (replay.settings.max_audio_seconds - 1) * replay.scale)


def run_speech(replay: Replay, ogg: bytes, deadline: float) -> Outcome:
    outcome, response = _upload(replay, "/v1/analyze", ogg, "speech.ogg", deadline, fields={"features": "speech"})
    outcome.note = join(f"{len(ogg):,} B of Opus", detail(response), _receipt_cpu(response))
    return outcome


# -- 3, 4. bodies and connections --------------------------------------------------------------------------


def make_big_body(replay: Replay) -> int:
    return sum(len(part) for part in padded_base64_parts(replay.photo, 48 * MIB))  # encodes the shared zeros


def run_big_bodies(replay: Replay, size: int, deadline: float) -> Outcome:
    n = replay.count(60, 2)

    def send(_: int) -> str:
        lead, zeros, tail = padded_base64_parts(replay.photo, 48 * MIB)
        length = len(lead) + len(zeros) + len(tail)
        head = replay.head(
            "POST", "/v1/analyze", {"Content-Type": "application/json", "Content-Length": str(length)}
        )
        view = memoryview(zeros)  # sent a MiB at a time: a reply may come before the end
        parts: list[bytes | memoryview] = [lead, *(view[i : i + MIB] for i in range(0, len(view), MIB)), tail]
        return exchange(replay.address, head, parts, deadline=deadline, source=ATTACKER_ADDRESS).label

    with ThreadPoolExecutor(n) as pool:
        outcome = Outcome(Counter(pool.map(send, range(n))))
    outcome.note = f"{n} at once, {size / MIB:.0f} MiB each, no two alike"
    return outcome


async def _trickle_one(replay: Replay, start: float, hold_s: float) -> tuple[str, float]:
    """One connection that sends a header line every 5 s and never finishes: how it ended, and after how long."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(*replay.address, local_addr=(ATTACKER_ADDRESS, 0)), timeout=10
        )
    except (OSError, TimeoutError) as exc:
        return f"connect-{type(exc).__name__}", 0.0
    began = time.monotonic()
    try:
        writer.write(f"GET /v1/collections HTTP/1.1\r\nHost: 127.0.0.1:{replay.port}\r\n".encode())
        while time.monotonic() - start < hold_s:
            try:
                data = await asyncio.wait_for(reader.read(1024), timeout=5)
            except TimeoutError:
                writer.write(b"X-Trickle: %d\r\n" % secrets.randbelow(10**6))
                await writer.drain()
                continue
            status = _parse(data).label if data.startswith(b"HTTP/1.") else "closed"
            return status, time.monotonic() - began  # the server answered (408, 503) or hung up
        return "held", time.monotonic() - began
    except OSError:
        return "closed", time.monotonic() - began
    finally:
        writer.close()


async def _trickle(replay: Replay, n: int, hold_s: float) -> Outcome:
    """`n` slow connections at once (slowloris): when and how the server lets go of them."""
    start, tasks = time.monotonic(), []
    for _ in range(n):
        tasks.append(asyncio.create_task(_trickle_one(replay, start, hold_s)))
        await asyncio.sleep(0.002)
    ended = await asyncio.gather(*tasks)
    outcome = Outcome(Counter(how for how, _ in ended))
    let_go = [after for how, after in ended if how != "held" and not how.startswith("connect")]
    median = f", median after {np.median(let_go):.1f} s" if let_go else ""
    opened = sum(1 for how, _ in ended if not how.startswith("connect"))
    outcome.note = f"{opened} opened, {len(let_go)} let go by the server{median}; each would hold {hold_s:.0f} s"
    return outcome


def run_slowloris(replay: Replay, _: Any, deadline: float) -> Outcome:
    hold = min(60.0, deadline - time.monotonic() - 12)
    return asyncio.run(_trickle(replay, replay.count(3000, 20), hold))


# -- 5. the result cache across tenants --------------------------------------------------------------------


def _resized(photo: bytes) -> bytes:
    picture = Image.open(io.BytesIO(photo)).convert("RGB")
    out = io.BytesIO()
    picture.resize((picture.width * 9 // 10, picture.height * 9 // 10)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _told(response: httpx.Response | None) -> str:
    text = response.text.lower() if response is not None else ""
    told = "served from cache" if "served from cache" in text else "computed afresh"
    return told + (" (tells the first CPU-s)" if "first computed" in text else "")


def run_cross_tenant_cache(replay: Replay, _: Any, deadline: float) -> Outcome:
    """A analyses two new photos and repeats one (the control); B sends the first's bytes, the second resized."""
    outcome, seen, fields = Outcome(), [], {"features": "faces,labels"}
    first, second = replay.fresh_photos

    def send(c: httpx.Client, photo: bytes) -> httpx.Response | None:
        status, response = replay.call(
            c, "POST", "/v1/analyze", deadline, files={"file": ("p.jpg", photo)}, data=fields
        )
        outcome.add(status)
        return response

    with replay.client(replay.victim_key, source="127.0.0.1") as a:
        for photo in (first, second):
            send(a, photo)
        seen.append(f"A's own repeat: {_told(send(a, first))}")
    with replay.client() as b:
        seen.append(f"B's exact copy: {_told(send(b, first))}")
        seen.append(f"B's resized copy: {_told(send(b, _resized(second)))}")
    outcome.note = "; ".join(seen)
    return outcome


# -- 7, 13, 14. what callers may store ---------------------------------------------------------------------


def _person_steps(
    replay: Replay, c: httpx.Client, outcome: Outcome, name: str, metadata: str, deadline: float
) -> str:
    """Create a person from raw JSON text, enrol a face, read the person and the list, delete: what each did."""
    path = f"/v1/collections/{replay.attacker_collection}/persons"
    body = f'{{"name": "{name}", "metadata": {metadata}}}'.encode()
    created, response = replay.call(
        c, "POST", path, deadline, content=body, headers={"Content-Type": "application/json"}
    )
    steps = [f"create {outcome.add(created)}"]
    person = response.json().get("id") if response is not None and response.status_code == 201 else None
    if person is None:
        listed, listing = replay.call(c, "GET", path, deadline)
        if listing is not None and listing.status_code == 200:
            person = next((p["id"] for p in listing.json()["persons"] if p["name"] == name), None)
            steps.append("stored anyway" if person else "not stored")
        else:
            steps.append(f"list {outcome.add(listed)}")
    if person:
        photo = {"file": ("f.jpg", replay.photo)}
        steps.append(
            f"enrol {outcome.add(replay.call(c, 'POST', f'/v1/persons/{person}/faces', deadline, files=photo)[0])}"
        )
        steps.append(f"read {outcome.add(replay.call(c, 'GET', f'/v1/persons/{person}', deadline)[0])}")
        steps.append(f"list {outcome.add(replay.call(c, 'GET', path, deadline)[0])}")
        steps.append(f"delete {outcome.add(replay.call(c, 'DELETE', f'/v1/persons/{person}', deadline)[0])}")
    return ", ".join(steps)


def _metadata_input(values: dict[str, str]) -> Callable[[Replay, Any, float], Outcome]:
    def run(replay: Replay, _: Any, deadline: float) -> Outcome:
        outcome, notes = Outcome(), []
        with replay.client() as c:
            for what, metadata in values.items():
                steps = _person_steps(replay, c, outcome, f"{what}-{secrets.token_hex(3)}", metadata, deadline)
                notes.append(f"{what}: {steps}")
        outcome.note = "; ".join(notes)
        return outcome

    return run


run_metadata_nan = _metadata_input({"NaN": '{"score": NaN}', "Infinity": '{"score": -Infinity}'})
run_metadata_deep = _metadata_input({"900 deep": deep_object(900)})


def run_index_huge_strings(replay: Replay, _: Any, deadline: float) -> Outcome:
    outcome, size = Outcome(), 10 * 1000 * 1000
    body = json.dumps(
        {"file": base64.b64encode(replay.photo).decode(), "name": "n" * size, "source": "s" * size}
    ).encode()
    with replay.client() as c:
        status, response = replay.call(
            c, "POST", "/v1/index", deadline, content=body, headers={"Content-Type": "application/json"}
        )
        outcome.add(status)
        listing_status, listing = replay.call(c, "GET", "/v1/items", deadline, params={"limit": 100})
        outcome.add(listing_status)
        if response is not None and response.status_code in (200, 201):
            item = response.json().get("item_id") or response.json().get("id")
            if item:
                outcome.add(replay.call(c, "DELETE", f"/v1/items/{item}", deadline)[0])
    listed = f"GET /v1/items then answered {len(listing.content):,} B" if listing is not None else ""
    outcome.note = join("10 MB name and source", detail(response), listed)
    return outcome


# -- 14, 15. parsers ---------------------------------------------------------------------------------------


DEEP_JSON_ROUTES = (
    "/v1/analyze",
    "/v1/faces/detect",
    "/v1/faces/compare",
    "/v1/faces/search",
    "/v1/collections/{collection}/identify",
    "/v1/persons/{person}/faces",
    "/v1/index",
    "/v1/search/image",
    "/v1/collections",
    "/v1/collections/{collection}/persons",
)


def run_deep_json(replay: Replay, _: Any, deadline: float) -> Outcome:
    body, json_type = nested_json(100_000), {"Content-Type": "application/json"}
    outcome, bad = Outcome(), []
    with replay.client() as c:
        for route in DEEP_JSON_ROUTES:
            path = route.format(collection=replay.attacker_collection, person=replay.attacker_person)
            status = outcome.add(replay.call(c, "POST", path, deadline, content=body, headers=json_type)[0])
            if not status.startswith("4"):
                bad.append(f"{route} {status}")
    outcome.note = f"{len(DEEP_JSON_ROUTES)} routes; " + (", ".join(bad) if bad else "all 4xx")
    return outcome


def run_chunked_oversize(replay: Replay, _: Any, deadline: float) -> Outcome:
    boundary = "chunky" + secrets.token_hex(8)
    total = replay.settings.max_upload_bytes + 8 * MIB
    head = replay.head(
        "POST",
        "/v1/analyze",
        {"Content-Type": f"multipart/form-data; boundary={boundary}", "Transfer-Encoding": "chunked"},
    )
    parts = [multipart_head(boundary, "file", "big.jpg", "image/jpeg")]
    body = chunked([*parts, *zeros_in_parts(total), f"\r\n--{boundary}--\r\n".encode()])
    reply = exchange(replay.address, head, body, deadline=deadline, source=ATTACKER_ADDRESS)
    outcome = Outcome(Counter([reply.label]))
    reason = ""
    if reply.status:
        try:
            reason = repr(str(json.loads(reply.body.decode() or "{}").get("detail", ""))[:70])
        except ValueError:
            reason = repr(reply.body[:70])
    outcome.note = join(
        f"{total / MIB:.0f} MiB chunked, limit {replay.settings.max_upload_bytes / MIB:.0f} MiB", reason
    )
    return outcome


# -- 10, 16. metrics labels and failed keys ----------------------------------------------------------------


def _metrics_size(replay: Replay, deadline: float) -> tuple[str, int]:
    """GET /metrics without a key (with the attacker's if one is needed): its status and size."""
    with replay.client() as c:
        key = c.headers.pop("Authorization")
        status, response = replay.call(c, "GET", "/metrics", deadline)
        if response is not None and response.status_code in (401, 403):
            status, response = replay.call(c, "GET", "/metrics", deadline, headers={"Authorization": key})
    return status, len(response.content) if response is not None else 0


#: a flood goes on this long at most (or until all its requests are sent); the server holds each refusal back
#: (`refusal_delay_s`), so the count answered in that time is the figure
FLOOD_S = 10.0


def _flood_end(deadline: float) -> float:
    return min(deadline - 5, time.monotonic() + FLOOD_S)  # leaves time for the checks after the flood


def _unsent(outcome: Outcome) -> int:
    return outcome.statuses.pop("skipped", 0)


def run_bogus_methods(replay: Replay, _: Any, deadline: float) -> Outcome:
    outcome = Outcome()
    before_status, before = _metrics_size(replay, deadline)
    n, flood_end = replay.count(3000, 20), _flood_end(deadline)

    def send(_: int) -> str:
        method = ("M" + secrets.token_hex(8).upper()).ljust(8000, "X")  # a new label every time
        head = replay.head(method, "/v1/collections", {"Connection": "close"})
        return exchange(replay.address, head, deadline=flood_end, source=ATTACKER_ADDRESS).label

    with ThreadPoolExecutor(8) as pool:
        outcome.statuses.update(pool.map(send, range(n)))
    unsent = _unsent(outcome)
    after_status, after = _metrics_size(replay, deadline)
    outcome.note = (
        f"{n - unsent} of {n} sent in {FLOOD_S:.0f} s by 8 connections at a time; "
        f"/metrics ({before_status}, {after_status}) grew from {before:,} B to {after:,} B"
    )
    return outcome


def run_invalid_keys(replay: Replay, _: Any, deadline: float) -> Outcome:
    n, lock, order = replay.count(3000, 60), threading.Lock(), []
    flood_end = _flood_end(deadline)

    def worker(share: int) -> None:
        with replay.client(key=f"fs_bogus_{secrets.token_hex(12)}", source=FLOODER_ADDRESS) as c:
            for _ in range(share):
                status = replay.call(c, "GET", "/v1/collections", flood_end)[0]
                if status == "skipped":
                    return
                with lock:
                    order.append(status)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, [n // 4 + (i < n % 4) for i in range(4)]))
    outcome = Outcome(Counter(order))
    first = order.index("429") + 1 if "429" in order else None
    outcome.note = f"{len(order)} of {n} sent in {FLOOD_S:.0f} s by 4 connections; " + (
        f"first 429 at request {first}" if first else "never 429"
    )
    return outcome


# -- 8. a large delete -------------------------------------------------------------------------------------


def run_delete_collection(replay: Replay, _: Any, deadline: float) -> Outcome:
    outcome = Outcome()
    start = time.monotonic()
    with replay.client() as c:
        status, response = replay.call(c, "DELETE", f"/v1/collections/{replay.bulk_collection}", deadline)
    outcome.add(status)
    outcome.note = join(
        f"{replay.bulk_faces:,} faces, answered in {time.monotonic() - start:.1f} s", detail(response)
    )
    return outcome


# In the issue's order; each bound (seconds, at --scale 1) covers the input's whole exchange.
HOSTILES = [
    Hostile("pdf-50-pages", 60, run_pdf_analyze, _pdf(50)),
    Hostile("pdf-12-compare", 45, run_pdf_compare, _pdf(12)),
    Hostile("pdf-12-identify", 45, run_pdf_identify, _pdf(12)),
    Hostile("pdf-12-twice", 50, run_pdf_twice, _pdf(12)),
    Hostile("mp4-7680px-frames", 45, run_video, make_video),
    Hostile("abandoned-7700px", 40, run_abandoned, lambda replay: flat_png(7700)),
    Hostile("opus-5-min", 110, run_speech, _speech(_five_minutes, 8000)),
    Hostile("audio-at-limit", 170, run_speech, _speech(_at_the_limit, 6000)),
    Hostile("json-48mib-x60", 50, run_big_bodies, make_big_body),
    Hostile("slowloris", 60, run_slowloris),
    Hostile("cross-tenant-cache", 30, run_cross_tenant_cache),
    Hostile("metadata-nan", 20, run_metadata_nan),
    Hostile("metadata-900-deep", 20, run_metadata_deep),
    Hostile("index-10mb-strings", 30, run_index_huge_strings),
    Hostile("json-100k-deep", 30, run_deep_json),
    Hostile("chunked-oversize", 30, run_chunked_oversize),
    Hostile("bogus-methods", 35, run_bogus_methods),
    Hostile("invalid-keys", 30, run_invalid_keys),
    Hostile("delete-collection", 45, run_delete_collection),
]
