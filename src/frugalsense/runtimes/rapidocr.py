"""RapidOCR (PP-OCR on ONNX Runtime): the whole pipeline, or its text detector and recogniser apart.

The parts use RapidOCR's own pre- and post-processing, so a detector box or a reading matches what the whole
pipeline would give for it. Like every engine object here, one `RapidOCRPipeline` is not for two threads at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.errors import ModelUnavailableError

__all__ = ["Quad", "RapidOCRPipeline", "Reading"]

#: four (x, y) corners of a text line, in the picture's own pixels
Quad = tuple[tuple[float, float], ...]
#: what the recogniser read on one crop and its confidence
Reading = tuple[str, float]
Image = npt.NDArray[np.uint8]


def _quad(points: Any) -> Quad:
    return tuple((float(x), float(y)) for x, y in points)


class RapidOCRPipeline:
    """RapidOCR's DB detector, angle classifier and CRNN recogniser, on `threads` intra-op threads."""

    def __init__(self, *, threads: int = 1) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise ModelUnavailableError(
                "rapidocr-onnxruntime is not installed: pip install --no-deps rapidocr-onnxruntime==1.4.4"
            ) from exc
        self._engine: Any = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)

    @property
    def text_score(self) -> float:
        """The pipeline's own cut: it drops readings scored below this."""
        return float(self._engine.text_score)

    def read(self, bgr: Image) -> list[tuple[Quad, str, float]]:
        """The whole pipeline on a BGR picture: (corners, text, confidence) per line it kept."""
        result, _ = self._engine(bgr)
        return [(_quad(quad), str(text), float(score)) for quad, text, score in result or []]

    def detect(self, bgr: Image, max_side: int | None = None) -> tuple[list[Quad], list[Image]]:
        """The detector alone: line corners in `bgr`'s pixels and the upright crops the recogniser reads.

        At the pipeline's own input size, or with `max_side` on a copy whose longer side is at most that.
        """
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

        engine = self._engine
        raw_h, raw_w = bgr.shape[:2]
        img, ratio_h, ratio_w = engine.preprocess(bgr)
        img, record = engine.maybe_add_letterbox(img, {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}})
        det = engine.text_det
        if max_side is None:
            prepare = det.get_preprocess(max(img.shape[:2]))
        else:
            prepare = DetPreProcess(max_side, "max", det.mean, det.std)
        tensor = prepare(img)
        if tensor is None:
            return [], []
        boxes, _ = det.postprocess_op(det.infer(tensor)[0], img.shape[:2])
        boxes = det.filter_tag_det_res(boxes, img.shape[:2])
        if len(boxes) == 0:
            return [], []
        boxes = engine.sorted_boxes(boxes)
        crops: list[Image] = list(engine.get_crop_img_list(img, boxes))
        points = engine._get_origin_points(boxes, record, raw_h, raw_w)
        return [_quad(quad) for quad in points], crops

    def recognise(self, crops: Sequence[Image], min_width: int = 320) -> list[Reading]:
        """The recogniser on each crop alone, padded to at least `min_width` px at its 48 px height.

        Alone, because batching pads every line to the widest of its batch, and on one thread the padding costs
        more than the batch saves (0.84 against 1.0 CPU-s per page). RapidOCR pads every line to 320 px; the
        network is convolutional with a CTC head, so a short word needs no more than its own width plus a margin.
        """
        rec = self._engine.text_rec
        height = int(rec.rec_image_shape[1])
        out = []
        for crop in crops:
            h, w = crop.shape[:2]
            ratio = max(min_width / height, w / max(1, h))
            tensor = np.ascontiguousarray(rec.resize_norm_img(crop, ratio)[None], np.float32)
            ((text, score),) = rec.postprocess_op(rec.session(tensor)[0], False)
            out.append((str(text), float(score)))
        return out

    def recognise_together(self, crops: Sequence[Image]) -> list[Reading]:
        """RapidOCR's own recogniser call on `crops`: batched, every line padded to 320 px or the widest."""
        if not crops:
            return []
        results, _ = self._engine.text_rec(list(crops))
        return [(str(res[0]), float(res[1])) for res in results]
