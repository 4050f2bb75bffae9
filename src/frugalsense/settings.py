"""One settings object, read from ``FRUGALSENSE_*`` environment variables (and CLI flags) when it is created.

>>> from frugalsense.settings import Settings
>>> s = Settings(data_dir="/tmp/fs-demo")
>>> s.model_dir.name
'models'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_data_dir"]


def default_data_dir() -> Path:
    """The per-user data folder: ``$XDG_DATA_HOME/frugalsense`` or ``~/.local/share/frugalsense``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "frugalsense"


class Settings(BaseSettings):
    """Everything frugalsense can be told. Created once at start-up and passed down."""

    model_config = SettingsConfigDict(env_prefix="FRUGALSENSE_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="folder for the database and files")
    database_url: str | None = Field(
        default=None,
        description="postgresql://... to keep everything in PostgreSQL (pip install 'frugalsense[postgres]');"
        " unset: SQLite in DATA_DIR",
    )
    erasure_vacuum: Literal["full", "plain"] = Field(
        default="full",
        description="PostgreSQL after an erasure: 'full' rewrites the tables it touched at once (no erased byte"
        " left in them; blocks them meanwhile); 'plain' prunes only, bytes stay in free space until a scheduled"
        " VACUUM (FULL) (docs/postgres.md)",
    )
    pg_ann_min_faces: int | None = Field(
        default=None,
        ge=0,
        description="PostgreSQL: a tenant with at least this many faces is identified through the HNSW index in"
        " the database (candidates re-ranked exactly) instead of each server's exact matrix. Unset: always the"
        " exact matrix; at 1M faces HNSW decided 199 of 200 probes alike (docs/postgres.md)",
    )
    model_cache: Path | None = Field(
        default=None, description="folder for converted ONNX models (default: DATA_DIR/models)"
    )
    price_per_cpu_hour: float = Field(default=0.05, ge=0, description="USD per CPU-hour used for cost receipts")
    threads: int = Field(default=1, ge=1, le=64, description="intra-op threads per model session")

    max_upload_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=60_000_000, gt=0, description="guard against decompression bombs")
    max_pdf_pages: int = Field(default=50, gt=0)
    pdf_dpi: int = Field(default=150, ge=36, le=600)
    max_audio_seconds: float = Field(default=20 * 60, gt=0, description="longest audio track decoded")
    video_frame_interval_s: float = Field(default=2.0, gt=0, description="seconds between sampled video frames")
    max_video_frames: int = Field(default=300, gt=0)
    speech_chunk_seconds: float = Field(
        default=300.0, ge=10, description="longest piece of a recording transcribed at once (bounds its memory)"
    )
    video_max_side: int = Field(
        default=1280, ge=64, description="sampled video frames are scaled down to at most this many pixels a side"
    )

    # -- budgets per request, checked before the work they bound (pages and frames are decoded one at a time) --
    max_request_pixels: int = Field(
        default=300_000_000, gt=0, description="decoded pixels per request, summed over every page and frame"
    )
    max_request_cpu_seconds: float = Field(
        default=300.0, gt=0, description="CPU-seconds one request may spend before it is stopped (422)"
    )
    memory_budget_bytes: int = Field(
        default=512 * 1024 * 1024,
        gt=0,
        description="bytes of request bodies and decoded pictures held at once by the server; past it: 503",
    )
    memory_wait_seconds: float = Field(
        default=10.0, ge=0, description="how long a picture waits for the memory budget before 503 + Retry-After"
    )
    tenant_workers: int = Field(
        default=0,
        ge=0,
        description="inference workers one tenant may hold while other tenants are active (0: all but one)",
    )
    metadata_threads: int = Field(
        default=8, ge=1, le=64, description="threads for database reads and writes, apart from inference"
    )
    large_work_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="nice added to the thread of a request once it turns out large, so small requests and "
        "metadata keep the cores (0: never lowered)",
    )
    large_work_cpu_seconds: float = Field(
        default=2.0, gt=0, description="a request is large once it has spent this many CPU-seconds"
    )
    large_work_pixels: int = Field(
        default=20_000_000, gt=0, description="a request is large once it decodes a picture of this many pixels"
    )

    # -- the connection edge --
    header_timeout_s: float = Field(default=10.0, gt=0, description="time a client has to send its headers")
    body_timeout_s: float = Field(
        default=30.0, gt=0, description="longest pause between two parts of a request body before 408"
    )
    max_connections: int = Field(default=512, ge=1, description="open connections; past it new ones get 503")
    max_connections_per_address: int = Field(
        default=64, ge=0, description="open connections one client address may hold (0: no cap; proxies have none)"
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses of reverse proxies whose X-Forwarded-For is believed (none)",
    )
    auth_failures_per_minute: float = Field(
        default=30.0, ge=0, description="failed API-key checks per client address per minute before 429 (0: off)"
    )
    refusal_delay_s: float = Field(
        default=1.0,
        ge=0,
        le=30,
        description="how long the answer to a locked-out address or an unknown method is held back (0: at once)",
    )

    # -- what callers may store --
    max_name_chars: int = Field(default=200, ge=1, description="longest person, collection or item name")
    max_source_chars: int = Field(default=1024, ge=1, description="longest `source` key of an indexed item")
    max_metadata_bytes: int = Field(default=16 * 1024, ge=2, description="largest metadata object, as JSON")
    erase_chunk_faces: int = Field(
        default=150,
        ge=1,
        le=10_000,
        description="faces deleted per transaction in a large erasure (other requests run between chunks)",
    )
    max_json_depth: int = Field(default=32, ge=2, description="deepest nesting accepted in any JSON body")
    keep_face_crops: bool = Field(
        default=True, description="store a small JPEG of each stored face next to its embedding (DATA_DIR/crops)"
    )

    host: str = Field(default="127.0.0.1", description="address `frugalsense serve` listens on")
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=2, ge=1, le=64, description="inference threads of the server")
    queue: int = Field(default=64, ge=0, description="requests that may wait for a worker before 503")
    rate_per_key: float = Field(default=20.0, ge=0, description="requests per second per API key (0: no limit)")
    rate_burst: int = Field(default=40, ge=1)
    batch_window_ms: float = Field(default=0.0, ge=0, le=100, description="wait this long to batch requests")
    max_batch: int = Field(default=8, ge=1, le=256)

    cache_entries: int = Field(
        default=1024, ge=0, description="results kept in the in-memory LRU result cache (0: no cache)"
    )
    near_duplicate: bool = Field(
        default=True, description="serve re-encoded, resized or lightly cropped copies of a photo from the cache"
    )

    profile_dir: Path | None = Field(
        default=None, description="folder of calibrated ladder profiles that override the shipped ones"
    )

    # -- search (frugalsense.search) --
    search_encoder: str = Field(
        default="conse", description="image encoder of the search space: 'conse' (built in) or 'onnx-clip'"
    )
    clip_image_model: Path | None = Field(default=None, description="ONNX image encoder for 'onnx-clip'")
    clip_text_model: Path | None = Field(default=None, description="ONNX text encoder for 'onnx-clip'")
    clip_tokenizer: Path | None = Field(default=None, description="tokenizer.json (Hugging Face) for 'onnx-clip'")
    clip_image_size: int = Field(default=224, ge=8, le=1024, description="square input side of the image encoder")
    search_collection: str = Field(
        default="people", description="collection that indexed faces are identified against (created if missing)"
    )
    index_workers: int = Field(default=2, ge=1, le=64, description="files analysed at once by `frugalsense index`")

    @field_validator(
        "data_dir",
        "model_cache",
        "profile_dir",
        "clip_image_model",
        "clip_text_model",
        "clip_tokenizer",
        mode="after",
    )
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def inference_per_tenant(self) -> int:
        """Inference workers one tenant may hold: the setting, or all but one of them."""
        return self.tenant_workers or max(1, self.workers - 1)

    @property
    def model_dir(self) -> Path:
        """Where converted models live."""
        return self.model_cache if self.model_cache is not None else self.data_dir / "models"
