"""Erasing from a gallery: a person, a face, a collection or a whole tenant, with their crops, embeddings and
index entries. Large erasures go in chunks, with the gallery's lock free between them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence

from frugalsense.errors import NotFoundError
from frugalsense.faces._base import GalleryBase
from frugalsense.store.base import Erased

__all__ = ["Erasure"]


class Erasure(GalleryBase):
    """`FaceGallery.delete_collection`, `delete_person`, `delete_face` and `erase_tenant`."""

    def delete_collection(
        self, tenant_id: str, collection_id: str, *, progress: Callable[[Erased], None] | None = None
    ) -> Erased:
        """Erase a collection with its persons and every face enrolled in or identified against it.

        The collection and everything in it disappear at once; its faces are then deleted ``erase_chunk`` at a
        time, and between chunks no lock is held, so other tenants' work goes on during a large erasure.
        ``progress`` is told what went so far after each chunk. A crash part-way leaves the collection hidden;
        deleting it again (or the next start) finishes the erasure.
        """
        with self._lock(tenant_id):
            self.store.begin_collection_erasure(tenant_id, collection_id)
            index = self._changed(tenant_id)
            if index is not None:
                index.remove_collection(collection_id)
        return self._erase_collection(tenant_id, collection_id, progress)

    def _erase_collection(
        self, tenant_id: str, collection_id: str, progress: Callable[[Erased], None] | None
    ) -> Erased:
        """The chunks of a begun collection erasure, each under the lock, none held in between."""
        erased = Erased()
        while not erased.collections:
            with self._lock(tenant_id):
                try:
                    chunk = self.store.erase_collection_chunk(
                        tenant_id, collection_id, self.erase_chunk, lambda ids: self._unlink_crops(tenant_id, ids)
                    )
                except NotFoundError:
                    break  # begun, so gone: another process finished this erasure meanwhile
                self._after_erase(tenant_id, chunk)
            erased = erased.plus(chunk)
            if progress is not None:
                progress(erased)
            time.sleep(0.001)  # let a thread waiting for the lock take it before the next chunk
        self.store.checkpoint()
        return erased

    def delete_person(self, tenant_id: str, person_id: str) -> Erased:
        """Erase a person: their enrolled faces, the sightings identified as them, embeddings, crops and
        corrections. Sightings never attributed to them cannot be told apart from strangers and stay."""
        with self._lock(tenant_id):
            self.store.get_person(tenant_id, person_id)
            doomed = self.store.list_faces(tenant_id, person_id=person_id)
            self._unlink_crops(tenant_id, [f.id for f in doomed])
            return self._after_erase(tenant_id, self.store.delete_person(tenant_id, person_id))

    def delete_face(self, tenant_id: str, face_id: str) -> Erased:
        with self._lock(tenant_id):
            self.store.get_face(tenant_id, face_id)
            self._unlink_crops(tenant_id, [face_id])
            return self._after_erase(tenant_id, self.store.delete_face(tenant_id, face_id))

    def erase_tenant(self, tenant_id: str, *, progress: Callable[[Erased], None] | None = None) -> Erased:
        """Erase a tenant and everything it owns: keys, collections, persons, faces and crops. Its faces go
        ``erase_chunk`` at a time, with no lock held between chunks (``progress`` is told what went so far after
        each), then the rest at once."""
        self.store.get_tenant(tenant_id)
        erased = Erased()
        while True:
            with self._lock(tenant_id):
                chunk = self.store.erase_tenant_faces(
                    tenant_id, self.erase_chunk, lambda ids: self._unlink_crops(tenant_id, ids)
                )
                if chunk.face_ids:
                    self._after_erase(tenant_id, chunk)
            if not chunk.face_ids:
                break
            erased = erased.plus(chunk)
            if progress is not None:
                progress(erased)
            time.sleep(0.001)  # let a thread waiting for the lock take it before the next chunk
        with self._lock(tenant_id):
            shutil.rmtree(self._tenant_crops(tenant_id), ignore_errors=True)
            erased = erased.plus(self.store.delete_tenant(tenant_id))
            shutil.rmtree(self._tenant_crops(tenant_id), ignore_errors=True)
            self._indexes.pop(tenant_id, None)
            self.index_loads.pop(tenant_id, None)
        return erased

    def _unlink_crops(self, tenant_id: str, face_ids: Sequence[str]) -> None:
        # Crops go before their rows: a crash in between leaves rows to delete again, not orphaned pictures.
        for face_id in face_ids:
            (self._tenant_crops(tenant_id) / f"{face_id}.jpg").unlink(missing_ok=True)

    def _after_erase(self, tenant_id: str, erased: Erased) -> Erased:
        root = self.settings.data_dir.resolve()
        for relative in erased.crop_paths:
            path = (self.settings.data_dir / relative).resolve()
            if path.is_relative_to(root):
                path.unlink(missing_ok=True)
        index = self._changed(tenant_id)
        if index is not None:
            index.remove(erased.face_ids)
            self._load_negatives(tenant_id, index)
        return erased
