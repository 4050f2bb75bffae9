"""What the same work would cost at two clouds' list prices, to set beside the tenant's own CPU dollars.

Prices are the published first-tier list prices per image (US regions, no free tier, no volume discount) as of
2025: AWS Rekognition Image ($1.00 per 1,000 images for DetectFaces, DetectLabels, DetectModerationLabels,
DetectText, SearchFacesByImage, IndexFaces, CompareFaces) and Google Cloud Vision ($1.50 per 1,000 units for face,
label, SafeSearch and text detection). Google has no face recognition; neither service here transcribes speech,
so those features have no cloud price (None). Receipt and invoice fields ("fields") are priced at Amazon
Textract AnalyzeExpense ($10 per 1,000 pages, first tier) in the AWS column: its answer includes the page's
text, so a page read for its fields is billed once, as fields (the usage ledger folds the text under it). A
form's key-value pairs ("forms") are priced the same way at Amazon Textract AnalyzeDocument with forms ($50 per
1,000 pages, first tier), whose answer includes the text too. Update the table when the lists change.

Both bill per picture and per feature: a PDF is billed page by page (Google's files API says so; Rekognition
takes images only, so each page is sent as one), and the prices apply to the usage ledger's units, the pictures
each feature analysed. A video counts its sampled frames (one every ``video_frame_interval_s``), priced as the
same frames sent to the image APIs; the clouds' video APIs, billed per minute of video, are not compared.

>>> cloud_usd("labels", 1000)  # a thousand pictures: photos, pages or frames
{'aws_rekognition': 1.0, 'google_vision': 1.5}
>>> cloud_usd("fields", 1000)  # a thousand receipt pages
{'aws_rekognition': 10.0, 'google_vision': None}
>>> cloud_usd("forms", 1000)  # a thousand form pages
{'aws_rekognition': 50.0, 'google_vision': None}
>>> cloud_usd("speech", 3)
{'aws_rekognition': None, 'google_vision': None}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from frugalsense.ledger import CostReceipt

__all__ = [
    "CLOUD_PRICES",
    "PICTURE_FEATURES",
    "PRICES_AS_OF",
    "TEXTRACT_EXPENSE_PER_PAGE",
    "TEXTRACT_FORMS_PER_PAGE",
    "cloud_usd",
    "feature_of_stage",
    "features_of",
]

PRICES_AS_OF = "2025"

#: the ledger's features a cloud bills per picture (photo, page or sampled frame)
PICTURE_FEATURES = ("faces", "identify", "labels", "moderation", "text", "fields", "forms")

#: Amazon Textract AnalyzeExpense, USD per page: $10 per 1,000 pages, the first tier's list price (US regions)
TEXTRACT_EXPENSE_PER_PAGE = 0.01

#: Amazon Textract AnalyzeDocument with the forms feature, USD per page: $50 per 1,000 pages, the first tier's list
#: price (US regions)
TEXTRACT_FORMS_PER_PAGE = 0.05

#: USD per picture at each cloud's list price, per feature of the usage ledger
CLOUD_PRICES: dict[str, dict[str, float | None]] = {
    "faces": {"aws_rekognition": 0.001, "google_vision": 0.0015},
    "identify": {"aws_rekognition": 0.001, "google_vision": None},
    "labels": {"aws_rekognition": 0.001, "google_vision": 0.0015},
    "moderation": {"aws_rekognition": 0.001, "google_vision": 0.0015},
    "text": {"aws_rekognition": 0.001, "google_vision": 0.0015},
    # Receipt and invoice fields are not Rekognition's or Vision's: the AWS column holds Amazon Textract
    # AnalyzeExpense. Google's counterpart (Document AI's Expense parser) is left empty: its list price could
    # not be checked on a published page when this was written; fill it in from Google's pricing page.
    "fields": {"aws_rekognition": TEXTRACT_EXPENSE_PER_PAGE, "google_vision": None},
    # A form's key-value pairs: Amazon Textract AnalyzeDocument (forms) in the AWS column; Google's (Document AI's
    # Form parser) left empty for the same reason.
    "forms": {"aws_rekognition": TEXTRACT_FORMS_PER_PAGE, "google_vision": None},
}

#: stage names on receipts (model card tasks and the pipeline's own stages) -> the ledger's feature
_STAGE_FEATURES = {
    "face-detection": "faces",
    "face-embedding": "faces",
    "match": "identify",
    "labels": "labels",
    "moderation": "moderation",
    "fields": "fields",
    "forms": "forms",
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


def cloud_usd(feature: str, units: int) -> dict[str, float | None]:
    """What ``units`` pictures of ``feature`` cost at each cloud's list price (None: that cloud does not sell
    it)."""
    prices = CLOUD_PRICES.get(feature, {"aws_rekognition": None, "google_vision": None})
    return {cloud: None if price is None else round(price * units, 6) for cloud, price in prices.items()}


def features_of(
    receipt: CostReceipt, pictures: Mapping[str, int] | int | None = None
) -> dict[str, tuple[float, int]]:
    """A receipt split the way the ledger bills it: feature -> (CPU-seconds, billable units).

    ``pictures``: how many pictures each image feature answered for, or one number for every image feature on
    the receipt; by default each analysed one picture. Finding and embedding faces is part of identifying them,
    and reading the text part of reading a receipt's fields or a form's pairs, as the clouds bill them; "shared"
    (decoding, storing, glue) is always there, with one unit: the request.
    """
    cpu: dict[str, float] = defaultdict(float)
    for stage in receipt.stages:
        cpu[feature_of_stage(stage.stage)] += stage.cpu_s
    every = pictures if isinstance(pictures, int) else 1
    units = {f: every for f in cpu if f in PICTURE_FEATURES}
    for feature, n in pictures.items() if isinstance(pictures, Mapping) else ():
        if n > 0 and feature in PICTURE_FEATURES:
            units[feature] = n
            cpu.setdefault(feature, 0.0)
    if "identify" in cpu:
        cpu["identify"] += cpu.pop("faces", 0.0)
        units["identify"] = max(units.get("identify", 1), units.pop("faces", 0))
    for document in ("fields", "forms"):
        if document in cpu:
            cpu[document] += cpu.pop("text", 0.0)
            units[document] = max(units.get(document, 1), units.pop("text", 0))
    cpu.setdefault("shared", 0.0)
    return {feature: (seconds, units.get(feature, 1)) for feature, seconds in cpu.items()}
