"""What the same work would cost at two clouds' list prices, to set beside the tenant's own CPU dollars.

Prices are the published first-tier list prices per image (US regions, no free tier, no volume discount) as of
2025: AWS Rekognition Image ($1.00 per 1,000 images for DetectFaces, DetectLabels, DetectModerationLabels,
DetectText, SearchFacesByImage, IndexFaces, CompareFaces) and Google Cloud Vision ($1.50 per 1,000 units for face,
label, SafeSearch and text detection). Google has no face recognition; neither service here transcribes speech,
so those features have no cloud price (None). Update the table when the lists change.

>>> cloud_usd("labels", 1000)
{'aws_rekognition': 1.0, 'google_vision': 1.5}
>>> cloud_usd("speech", 3)
{'aws_rekognition': None, 'google_vision': None}
"""

from __future__ import annotations

__all__ = ["CLOUD_PRICES", "PRICES_AS_OF", "cloud_usd", "feature_of_stage"]

PRICES_AS_OF = "2025"

#: USD per image (or call) at each cloud's list price, per feature of the usage ledger
CLOUD_PRICES: dict[str, dict[str, float | None]] = {
    "faces": {"aws_rekognition": 0.001, "google_vision": 0.0015},
    "identify": {"aws_rekognition": 0.001, "google_vision": None},
    "labels": {"aws_rekognition": 0.001, "google_vision": 0.0015},
    "moderation": {"aws_rekognition": 0.001, "google_vision": 0.0015},
    "text": {"aws_rekognition": 0.001, "google_vision": 0.0015},
}

#: stage names on receipts (model card tasks and the pipeline's own stages) -> the ledger's feature
_STAGE_FEATURES = {
    "face-detection": "faces",
    "face-embedding": "faces",
    "match": "identify",
    "labels": "labels",
    "moderation": "moderation",
    "ocr": "text",
    "text-presence": "text",
    "route": "text",
    "speech-to-text": "speech",
    "vad": "speech",
    "voice-activity": "speech",
    "encode": "search",
    "embed": "search",
    "embed-image": "search",
    "search": "search",
    "text-embedding": "search",
}


def feature_of_stage(stage: str) -> str:
    """The ledger feature a receipt's stage is billed to; decoding, caching, storing and glue are "shared"."""
    return _STAGE_FEATURES.get(stage, "shared")


def cloud_usd(feature: str, count: int) -> dict[str, float | None]:
    """What ``count`` calls of ``feature`` cost at each cloud's list price (None: that cloud does not sell it)."""
    prices = CLOUD_PRICES.get(feature, {"aws_rekognition": None, "google_vision": None})
    return {cloud: None if price is None else round(price * count, 6) for cloud, price in prices.items()}
