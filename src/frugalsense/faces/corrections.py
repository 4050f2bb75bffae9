"""Learning from corrections: "this face is X" enrols it for X, "this face is not X" keeps faces like it from
being answered X again."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from frugalsense.errors import InvalidRequestError
from frugalsense.faces._base import SECOND_MODEL, GalleryBase
from frugalsense.faces.clusters import nearest_cluster
from frugalsense.faces.results import CorrectionResult
from frugalsense.ledger import Meter
from frugalsense.store.sqlite import new_id

__all__ = ["Corrections"]


class Corrections(GalleryBase):
    """`FaceGallery.correct`."""

    def correct(
        self, tenant_id: str, face_id: str, *, is_person: str | None = None, is_not_person: str | None = None
    ) -> CorrectionResult:
        """Tell the gallery what a stored face is (or is not). "is" enrols the face for that person; "is not"
        takes it away from that person and keeps later answers for faces like it from naming them again."""
        if is_person is None and is_not_person is None:
            raise InvalidRequestError("say what the face is: pass is_person, is_not_person or both")
        if is_person is not None and is_person == is_not_person:
            raise InvalidRequestError("a face cannot both be and not be the same person")
        corrections = []
        # Enrolled by a correction: dlib's embedding from the stored crop, so the person can climb the
        # identification ladder like one enrolled from a picture (worked out before taking the lock).
        second = self._second_from_crop(tenant_id, face_id) if is_person is not None else None
        with self._lock(tenant_id):
            if is_not_person is not None:
                corrections.append(self.store.correct_face(tenant_id, face_id, is_not_person, "is_not"))
            if is_person is not None:
                corrections.append(self.store.correct_face(tenant_id, face_id, is_person, "is"))
            if second is not None:
                self.store.add_face_embedding(tenant_id, face_id, SECOND_MODEL, second)
            record = self.store.get_face(tenant_id, face_id)
            index = self._changed(tenant_id, writes=len(corrections)) or self._index(tenant_id)
            if record.person_id is None and record.cluster_id is None and record.model == self.model:
                cluster = nearest_cluster(
                    index,
                    record.embedding,
                    link_threshold=self.profile.cluster_threshold,
                    mean_threshold=self.profile.identify_threshold,
                ) or new_id("clu")
                self.store.set_clusters(tenant_id, {face_id: cluster})
                index = self._changed(tenant_id) or self._index(tenant_id)
                record = self.store.get_face(tenant_id, face_id)
            index.update(
                face_id,
                collection_id=record.collection_id,
                person_id=record.person_id,
                enrolled=record.enrolled,
                cluster_id=record.cluster_id,
            )
            for correction in corrections:
                negatives = index.negatives.setdefault(face_id, set())
                if correction.kind == "is_not":
                    negatives.add(correction.person_id)
                else:
                    negatives.discard(correction.person_id)
        return CorrectionResult(face=record, corrections=corrections)

    def _second_from_crop(self, tenant_id: str, face_id: str) -> npt.NDArray[np.float32] | None:
        """dlib's embedding of a stored face, from its crop: None without an identification ladder, without a
        crop (crops off, or written by an older version), or when the detector no longer finds the face in it."""
        if self.identify_ladder is None:
            return None
        record = self.store.get_face(tenant_id, face_id)
        path = self.settings.data_dir / record.crop_path if record.crop_path else None
        if path is None or not path.is_file():
            return None
        meter = Meter(self.settings.price_per_cpu_hour)
        frame, _, _ = self._decode(path, meter, None)
        faces = self._faces(frame, meter)
        if not faces:
            return None
        # The crop is centred on the face with a margin: the largest face nearest the centre is the one.
        cx, cy = frame.width / 2, frame.height / 2
        face = min(
            faces, key=lambda f: (abs(f.box.x + f.box.w / 2 - cx) + abs(f.box.y + f.box.h / 2 - cy), -f.box.w)
        )
        return self._second_embedding(frame, face, meter)
