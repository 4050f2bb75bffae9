"""Face galleries: enrol people, identify faces 1:N with an honest "unknown", learn from corrections, search back
through every face seen, group recurring strangers, and erase a person or a face completely.

One class, `FaceGallery`, built from one module per idea: `matching` (identify, search), `compare`,
`corrections`, `clusters` (strangers), `erasure`; `_base` holds the state and internals they share. Every method
takes the tenant first and treats another tenant's ids as missing (``NotFoundError``). Calls that
look at a picture return the request's ``CostReceipt``.

    >>> from frugalsense import Analyzer, Settings
    >>> from frugalsense.store import SQLiteStore
    >>> settings = Settings(data_dir="/tmp/fs-gallery-demo")
    >>> gallery = FaceGallery(SQLiteStore.open(settings), Analyzer(settings))       # doctest: +SKIP
    >>> tenant = gallery.store.create_tenant("acme").id                             # doctest: +SKIP
    >>> staff = gallery.create_collection(tenant, "staff")                          # doctest: +SKIP
    >>> ada = gallery.create_person(tenant, staff.id, "Ada")                        # doctest: +SKIP
    >>> gallery.enrol(tenant, ada.id, "ada.jpg").face.id                            # doctest: +SKIP
    'face_...'
    >>> gallery.identify(tenant, staff.id, "door-camera.jpg").faces[0].decision     # doctest: +SKIP
    'per_...'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from frugalsense.faces._base import SECOND_MODEL, pick_face
from frugalsense.faces.clusters import RECLUSTER_MAX, Clustering
from frugalsense.faces.compare import Comparison, face_patch
from frugalsense.faces.corrections import Corrections
from frugalsense.faces.erasure import Erasure
from frugalsense.faces.matching import Identification, decide
from frugalsense.faces.profile import FaceProfile
from frugalsense.faces.results import EnrolResult
from frugalsense.ledger import Meter
from frugalsense.media.types import Source
from frugalsense.store.base import Collection, FaceRecord, Person, Store

if TYPE_CHECKING:
    from frugalsense.analyze import Analyzer

__all__ = ["RECLUSTER_MAX", "SECOND_MODEL", "FaceGallery", "Source", "decide", "face_patch"]


class FaceGallery(Identification, Comparison, Corrections, Clustering, Erasure):
    """Galleries of people per tenant, over a `Store` and the analyzer's face models. Thread-safe."""

    def __init__(
        self,
        store: Store,
        analyzer: Analyzer,
        profile: FaceProfile | None = None,
        *,
        keep_crops: bool | None = None,
    ) -> None:
        super().__init__(store, analyzer, profile, keep_crops=keep_crops)
        # Erasures a crash interrupted are finished before anything else.
        for tenant_id, collection_id in store.erasing_collections():
            self._erase_collection(tenant_id, collection_id, None)

    # -- collections and persons ----------------------------------------------------------------------------

    def create_collection(self, tenant_id: str, name: str) -> Collection:
        return self.store.create_collection(tenant_id, name)

    def list_collections(self, tenant_id: str) -> list[Collection]:
        return self.store.list_collections(tenant_id)

    def get_collection(self, tenant_id: str, collection_id: str) -> Collection:
        return self.store.get_collection(tenant_id, collection_id)

    def create_person(
        self, tenant_id: str, collection_id: str, name: str, metadata: Mapping[str, Any] | None = None
    ) -> Person:
        return self.store.create_person(tenant_id, collection_id, name, metadata)

    def get_person(self, tenant_id: str, person_id: str) -> Person:
        return self.store.get_person(tenant_id, person_id)

    def list_persons(self, tenant_id: str, collection_id: str | None = None) -> list[Person]:
        return self.store.list_persons(tenant_id, collection_id)

    # -- faces ----------------------------------------------------------------------------------------------

    def get_face(self, tenant_id: str, face_id: str) -> FaceRecord:
        return self.store.get_face(tenant_id, face_id)

    def list_faces(
        self, tenant_id: str, *, person_id: str | None = None, cluster_id: str | None = None
    ) -> list[FaceRecord]:
        if person_id is not None:
            self.store.get_person(tenant_id, person_id)
        return self.store.list_faces(tenant_id, person_id=person_id, cluster_id=cluster_id)

    def enrol(
        self,
        tenant_id: str,
        person_id: str,
        source: Source,
        *,
        face_index: int | None = None,
        name: str | None = None,
    ) -> EnrolResult:
        """Add a reference face for a person. The picture must show exactly one face, or ``face_index`` must
        pick one of those found (0-based, in detection order; the error lists them)."""
        person = self.store.get_person(tenant_id, person_id)
        meter = Meter(self.settings.price_per_cpu_hour)
        frame, decoded_name, sha256 = self._decode(source, meter, name)
        faces = self._faces(frame, meter)
        face = pick_face(faces, face_index, decoded_name)
        assert face.embedding is not None
        new = self._new_face(
            face, sha256, decoded_name, collection_id=person.collection_id, person_id=person.id, enrolled=True
        )
        crop = self._encode_crop(frame, face.box)
        # dlib's embedding too, so that probes in the identification ladder's band can climb to it later
        second = self._second_embedding(frame, face, meter) if self.identify_ladder is not None else None
        with meter.stage("store"), self._lock(tenant_id):
            record = self._insert(tenant_id, new, crop)
            if second is not None:
                self.store.add_face_embedding(tenant_id, record.id, SECOND_MODEL, second)
        return EnrolResult(
            person=self.store.get_person(tenant_id, person_id),
            face=record,
            faces_found=len(faces),
            receipt=meter.receipt,
        )
