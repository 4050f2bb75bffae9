"""The shared semantic space: text and pictures as unit vectors that a dot product compares.

The built-in encoder needs no CLIP. Text (read in a picture, spoken, or typed as a query) is embedded with
all-MiniLM-L6-v2. A picture is placed in the same space by ConSE (Norouzi et al., "Zero-Shot Learning by Convex
Combination of Semantic Embeddings", ICLR 2014): the classifier's top labels' name embeddings, averaged with the
label probabilities as weights. A picture that holds text also gets that text's embedding added (`page_vector`).

The image encoder is a seam: `ImageEncoder` is the protocol, `register_encoder` adds one, and the setting
``search_encoder`` picks it. `OnnxClipEncoder` runs a user's own CLIP-style pair of ONNX encoders; switching
encoders means re-indexing (vectors are stored with the encoder's name, and a search reads only its own).

    from frugalsense import Analyzer, Settings
    encoder = load_encoder(Settings(), Analyzer())
    q = encoder.encode_texts(["a goldfish"])[0]
    round(float(q @ q), 3)
    # 1.0
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import cached_property
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from frugalsense.analyze import Analyzer
from frugalsense.atomic import atomic_write
from frugalsense.errors import ConfigurationError, ModelUnavailableError
from frugalsense.ledger import Meter
from frugalsense.media.types import Frame
from frugalsense.results import PageResult
from frugalsense.settings import Settings

__all__ = [
    "ConseEncoder",
    "ImageEncoder",
    "OnnxClipEncoder",
    "load_encoder",
    "meaningful_text",
    "normalize",
    "page_vector",
    "register_encoder",
]

Vector = npt.NDArray[np.float32]
Matrix = npt.NDArray[np.float32]

TEXT_MODEL = "minilm-l6-v2"
#: words of at least three letters a picture's text needs before it moves the picture's vector (OCR of a
#: photo often finds a stray "ABC"; that says nothing about what the photo shows)
MIN_TEXT_WORDS = 2
_WORD = re.compile(r"[^\W\d_]{3,}")
# OpenAI CLIP's preprocessing constants (RGB mean and standard deviation of its training images).
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
CLIP_CONTEXT = 77


@runtime_checkable
class ImageEncoder(Protocol):
    """Puts pictures and text into one space of unit vectors."""

    @property
    def name(self) -> str:
        """Identifies the space: vectors made under one name are never compared with another's."""
        ...

    #: analysis features `encode_image` reads from the page (ConSE needs "labels"; a CLIP encoder none)
    features: tuple[str, ...]

    def encode_texts(self, texts: Sequence[str], meter: Meter | None = None) -> Matrix:
        """Unit vectors, one row per text."""
        ...

    def encode_image(self, frame: Frame, page: PageResult, meter: Meter | None = None) -> Vector | None:
        """A unit vector for the picture, or None when it cannot place it (no labels)."""
        ...


def normalize(vector: npt.NDArray[np.floating]) -> Vector:
    """The unit vector along ``vector`` (zero stays zero).

    >>> normalize(np.array([3.0, 4.0])).tolist()
    [0.6000000238418579, 0.800000011920929]
    """
    v = np.asarray(vector, np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def meaningful_text(text: str) -> bool:
    """Enough words to say something about a picture.

    >>> meaningful_text("TOTAL 12.50"), meaningful_text("Invoice from Acme Trading")
    (False, True)
    """
    return len(_WORD.findall(text)) >= MIN_TEXT_WORDS


def page_vector(
    encoder: ImageEncoder, frame: Frame | None, page: PageResult, meter: Meter | None = None
) -> Vector | None:
    """One picture's place in the space: its look (the encoder) plus any text it holds, equally weighted."""
    look = encoder.encode_image(frame, page, meter) if frame is not None else None
    text = page.full_text
    words = encoder.encode_texts([text], meter)[0] if meaningful_text(text) else None
    if look is None:
        return words
    if words is None:
        return look
    return normalize(look + words)


class ConseEncoder:
    """ConSE over the image classifier's labels, in MiniLM's text space. No extra model to download.

    ``template`` turns a class name into the text that is embedded; a bare name matched short queries best on
    the calibration half of the ImageNet sample (see docs/search.md).
    """

    features: tuple[str, ...] = ("labels",)

    def __init__(self, analyzer: Analyzer, *, template: str = "{}") -> None:
        self.analyzer = analyzer
        self.template = template
        self._names: Matrix | None = None
        self._lock = threading.Lock()

    @cached_property  # read once: the precision comes from a profile file, and every query and item asks
    def name(self) -> str:
        suffix = "" if self.template == "{}" else "-" + hashlib.sha256(self.template.encode()).hexdigest()[:8]
        # The text model's precision is part of the vectors' identity: items embedded in another precision are
        # embedded again when indexed (int8, the first precision shipped, keeps the plain name).
        precision = str(getattr(self.analyzer.zoo.get(TEXT_MODEL), "precision", "int8"))
        model = TEXT_MODEL if precision == "int8" else f"{TEXT_MODEL}-{precision}"
        return f"conse-{model}{suffix}"

    def encode_texts(self, texts: Sequence[str], meter: Meter | None = None) -> Matrix:
        if not texts:
            return np.zeros((0, 384), np.float32)
        vectors = self.analyzer.zoo.get(TEXT_MODEL).predict(list(texts), meter, stage="embed")
        return np.stack(vectors).astype(np.float32)

    def label_matrix(self) -> Matrix:
        """The 1000 ImageNet class names embedded (computed once, then read from the model cache)."""
        if self._names is None:
            with self._lock:
                if self._names is None:
                    self._names = self._load_names()
        return self._names

    def _load_names(self) -> Matrix:
        from frugalsense.models.labels import imagenet_names

        cache = self.analyzer.settings.model_dir / f"{self.name}-imagenet.npy"
        if cache.is_file():
            matrix = np.load(cache)
            if matrix.shape[0] == 1000:
                return np.asarray(matrix, np.float32)
        texts = [self.template.format(n) for n in imagenet_names()]
        matrix = np.concatenate([self.encode_texts(texts[i : i + 64]) for i in range(0, len(texts), 64)])
        with atomic_write(cache) as handle:
            np.save(handle, matrix)
        return matrix

    def encode_image(self, frame: Frame | None, page: PageResult, meter: Meter | None = None) -> Vector | None:
        if not page.labels:
            return None
        names = self.label_matrix()
        weights = np.array([label.score for label in page.labels], np.float32)
        rows = names[[label.index for label in page.labels]]
        # The convex combination: probabilities renormalised over the top labels, then back to unit length.
        combined: Vector = weights @ rows / max(float(weights.sum()), 1e-9)
        return normalize(combined)


class OnnxClipEncoder:
    """A user's CLIP-style encoder pair: ``clip_image_model`` and ``clip_text_model`` (ONNX) with a Hugging Face
    ``clip_tokenizer`` (tokenizer.json), all named in the settings.

    The image graph takes one float32 input [batch, 3, size, size] (RGB, CLIP's mean and std) and the text graph
    int64 ``input_ids`` [batch, 77] (and ``attention_mask`` if it asks for one); each returns the embedding as
    its first output ([batch, dim], or [batch, tokens, dim] whose first token is taken).
    """

    features: tuple[str, ...] = ()

    def __init__(self, settings: Settings) -> None:
        paths = (settings.clip_image_model, settings.clip_text_model, settings.clip_tokenizer)
        if any(p is None for p in paths):
            raise ConfigurationError(
                "search_encoder 'onnx-clip' needs FRUGALSENSE_CLIP_IMAGE_MODEL, FRUGALSENSE_CLIP_TEXT_MODEL and "
                "FRUGALSENSE_CLIP_TOKENIZER (ONNX files and a tokenizer.json)"
            )
        self.image_path, self.text_path, self.tokenizer_path = (Path(str(p)) for p in paths)
        for path in (self.image_path, self.text_path, self.tokenizer_path):
            if not path.is_file():
                raise ModelUnavailableError(f"the CLIP encoder file {path} does not exist; check the setting")
        self.settings = settings
        self.size = settings.clip_image_size
        self._lock = threading.Lock()
        self._loaded = False
        self._name: str | None = None

    @property
    def name(self) -> str:
        if self._name is None:
            digest = hashlib.sha256()
            for path in (self.image_path, self.text_path, self.tokenizer_path):
                with path.open("rb") as handle:
                    for block in iter(lambda h=handle: h.read(1 << 20), b""):  # type: ignore[misc]
                        digest.update(block)
            self._name = f"onnx-clip-{digest.hexdigest()[:12]}"
        return self._name

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            from tokenizers import Tokenizer

            from frugalsense.runtimes import open_session

            threads = self.settings.threads
            self._image = open_session("onnxruntime", self.image_path, threads=threads)
            self._text = open_session("onnxruntime", self.text_path, threads=threads)
            self._tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
            self._loaded = True

    def encode_texts(self, texts: Sequence[str], meter: Meter | None = None) -> Matrix:
        self._load()
        if not texts:
            return np.zeros((0, 0), np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.zeros((len(texts), CLIP_CONTEXT), np.int64)
        mask = np.zeros((len(texts), CLIP_CONTEXT), np.int64)
        for row, encoding in enumerate(encodings):
            tokens = encoding.ids[:CLIP_CONTEXT]
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        names = self._text.input_names
        feeds = {"input_ids" if "input_ids" in names else names[0]: ids}
        if "attention_mask" in names:
            feeds["attention_mask"] = mask
        with meter.stage("embed", self.name, items=len(texts)) if meter else nullcontext():
            out = np.asarray(self._text.run(feeds)[0], np.float32)
        return _rows(out)

    def encode_image(self, frame: Frame | None, page: PageResult, meter: Meter | None = None) -> Vector | None:
        if frame is None:
            return None
        self._load()
        with meter.stage("embed-image", self.name) if meter else nullcontext():
            x = clip_preprocess(frame.pixels, self.size)
            out = np.asarray(self._image.run({self._image.input_names[0]: x})[0], np.float32)
        vector: Vector = _rows(out)[0]
        return vector


def clip_preprocess(pixels: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.float32]:
    """RGB uint8 (H, W, 3) -> [1, 3, size, size]: shorter side to ``size`` (bicubic), centre crop, CLIP's
    mean and std."""
    import cv2

    h, w = pixels.shape[:2]
    scale = size / min(h, w)
    resized = cv2.resize(
        pixels, (max(size, round(w * scale)), max(size, round(h * scale))), interpolation=cv2.INTER_CUBIC
    )
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    crop = resized[top : top + size, left : left + size].astype(np.float32) / 255.0
    return np.ascontiguousarray(((crop - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)[None])


def _rows(out: npt.NDArray[np.float32]) -> Matrix:
    if out.ndim == 3:
        out = out[:, 0]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    unit: Matrix = (out / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


EncoderFactory = Callable[[Settings, Analyzer], ImageEncoder]

_ENCODERS: dict[str, EncoderFactory] = {}


def register_encoder(name: str, factory: EncoderFactory) -> None:
    """Make an encoder available to the ``search_encoder`` setting (built-ins register the same way)."""
    _ENCODERS[name] = factory


register_encoder("conse", lambda settings, analyzer: ConseEncoder(analyzer))
register_encoder("onnx-clip", lambda settings, analyzer: OnnxClipEncoder(settings))


def load_encoder(settings: Settings, analyzer: Analyzer) -> ImageEncoder:
    """The encoder the settings name (``search_encoder``)."""
    factory = _ENCODERS.get(settings.search_encoder)
    if factory is None:
        raise ConfigurationError(
            f"unknown search_encoder {settings.search_encoder!r}; choose from {', '.join(sorted(_ENCODERS))}"
        )
    return factory(settings, analyzer)
