"""Copies of identities inside stored item results, found and scrubbed when a person or a face is erased.

An indexed item's result keeps, for every face in it, what identification said: the stored face's id, the
decision (a person id), that person's name, the candidates with their similarities and the persons ruled out.
`item_refs` records which person and face ids each item's result mentions, so an erasure finds the items to
rewrite through an index instead of reading every result. Scrubbing drops the faces that were erased and every
mention of the erased persons, and recomputes the similarity from the candidates that remain.

    >>> result = {"pages": [{"faces": [{"face_id": "face_a", "decision": "unknown", "name": None,
    ...     "similarity": 0.31, "candidates": [{"person_id": "per_x", "name": "Ada", "similarity": 0.31}],
    ...     "excluded": []}]}]}
    >>> sorted(result_refs(result))
    ['face_a', 'per_x']
    >>> scrub_result(result, persons={"per_x"}, faces=set())
    True
    >>> result["pages"][0]["faces"][0]["candidates"], result["pages"][0]["faces"][0]["similarity"]
    ([], 0.0)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

from frugalsense.store.base import Erased

__all__ = [
    "backfill_refs",
    "delete_faces",
    "delete_persons",
    "record_refs",
    "result_refs",
    "scrub_items",
    "scrub_result",
]

_UNKNOWN = "unknown"  # the decision about a face identify could not name (faces.results.UNKNOWN)
_CHUNK = 500  # bound parameters per statement stay well under SQLite's limit


def _faces(result: dict[str, Any]) -> Iterator[tuple[list[dict[str, Any]], int, dict[str, Any]]]:
    """(list, position, face) for every face entry of every page of a result."""
    for page in result.get("pages") or []:
        entries = page.get("faces") if isinstance(page, dict) else None
        if isinstance(entries, list):
            for position, face in enumerate(entries):
                if isinstance(face, dict):
                    yield entries, position, face


def _candidates(face: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in face.get("candidates") or [] if isinstance(c, dict)]


def result_refs(result: dict[str, Any]) -> set[str]:
    """The face and person ids an item's result mentions."""
    refs: set[str] = set()
    for _, _, face in _faces(result):
        refs.update(v for v in (face.get("face_id"), face.get("decision")) if isinstance(v, str) and v != _UNKNOWN)
        refs.update(c["person_id"] for c in _candidates(face) if isinstance(c.get("person_id"), str))
        refs.update(p for p in face.get("excluded") or [] if isinstance(p, str))
    return refs


def scrub_result(result: dict[str, Any], *, persons: Collection[str], faces: Collection[str]) -> bool:
    """Drop the erased faces from a result and every mention of the erased persons; True if anything changed."""
    changed = False
    doomed: list[tuple[list[dict[str, Any]], int]] = []
    for entries, position, face in _faces(result):
        if face.get("face_id") in faces:
            doomed.append((entries, position))
            continue
        candidates = [c for c in _candidates(face) if c.get("person_id") not in persons]
        if len(candidates) != len(face.get("candidates") or []):
            face["candidates"] = candidates
            face["similarity"] = max((float(c.get("similarity", 0.0)) for c in candidates), default=0.0)
            changed = True
        if face.get("decision") in persons:
            face["decision"], face["name"] = _UNKNOWN, None
            changed = True
        excluded = face.get("excluded") or []
        if any(p in persons for p in excluded):
            face["excluded"] = [p for p in excluded if p not in persons]
            changed = True
    for entries, position in reversed(doomed):  # from the back, so earlier positions stay valid
        del entries[position]
    return changed or bool(doomed)


def record_refs(conn: sqlite3.Connection, tenant_id: str, item_id: str, result: dict[str, Any]) -> None:
    """Note the ids an item's result mentions, inside the transaction that writes the item."""
    conn.executemany(
        "INSERT OR IGNORE INTO item_refs (tenant_id, ref, item_id) VALUES (?, ?, ?)",
        [(tenant_id, ref, item_id) for ref in sorted(result_refs(result))],
    )


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def scrub_items(
    conn: sqlite3.Connection, tenant_id: str, *, persons: Iterable[str] = (), faces: Iterable[str] = ()
) -> int:
    """Rewrite the tenant's item results that mention erased persons or faces, inside the caller's transaction
    (with ``secure_delete`` on, the old text is overwritten); returns how many items changed."""
    gone_persons, gone_faces = set(persons), set(faces)
    refs = sorted(gone_persons | gone_faces)
    items: set[str] = set()
    for chunk in _chunks(refs):
        marks = ",".join("?" * len(chunk))
        items.update(
            r[0]
            for r in conn.execute(
                f"SELECT item_id FROM item_refs WHERE tenant_id = ? AND ref IN ({marks})", (tenant_id, *chunk)
            )
        )
    changed = 0
    for item_chunk in _chunks(sorted(items)):
        marks = ",".join("?" * len(item_chunk))
        rows = conn.execute(
            f"SELECT id, result FROM items WHERE tenant_id = ? AND id IN ({marks})", (tenant_id, *item_chunk)
        ).fetchall()
        for item_id, text in rows:
            result = json.loads(text)
            if scrub_result(result, persons=gone_persons, faces=gone_faces):
                conn.execute(
                    "UPDATE items SET result = ? WHERE tenant_id = ? AND id = ?",
                    (json.dumps(result, ensure_ascii=False), tenant_id, item_id),
                )
                # What the result still mentions, so a later erasure finds only the items it must rewrite.
                conn.execute("DELETE FROM item_refs WHERE tenant_id = ? AND item_id = ?", (tenant_id, item_id))
                record_refs(conn, tenant_id, item_id, result)
                changed += 1
    for chunk in _chunks(refs):
        marks = ",".join("?" * len(chunk))
        conn.execute(f"DELETE FROM item_refs WHERE tenant_id = ? AND ref IN ({marks})", (tenant_id, *chunk))
    return changed


def backfill_refs(conn: sqlite3.Connection) -> None:
    """Record the refs of items written before `item_refs` existed, and scrub what older versions erased but
    left in the results (persons and faces that no longer exist)."""
    # One row at a time: a large index's results do not fit in memory at once.
    for tenant_id, item_id, text in conn.execute("SELECT tenant_id, id, result FROM items"):
        record_refs(conn, tenant_id, item_id, json.loads(text))
    stale = conn.execute(
        "SELECT DISTINCT tenant_id, ref FROM item_refs r WHERE"
        " (ref LIKE 'per!_%' ESCAPE '!' AND NOT EXISTS (SELECT 1 FROM persons p WHERE p.id = r.ref))"
        " OR (ref LIKE 'face!_%' ESCAPE '!' AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.id = r.ref))"
    ).fetchall()
    by_tenant: dict[str, list[str]] = {}
    for tenant_id, ref in stale:
        by_tenant.setdefault(tenant_id, []).append(ref)
    for tenant_id, refs in by_tenant.items():
        persons = [r for r in refs if r.startswith("per_")]
        scrub_items(conn, tenant_id, persons=persons, faces=[r for r in refs if not r.startswith("per_")])


def delete_faces(
    conn: sqlite3.Connection, tenant_id: str, rows: Sequence[sqlite3.Row], *, scrub: bool = True
) -> Erased:
    """Delete faces (rows of id and crop_path) with their corrections, inside the caller's transaction; their
    second embeddings and item links go by cascade, and with ``scrub`` the item results that show them are
    rewritten without them."""
    ids = [r["id"] for r in rows]
    corrections = 0
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        corrections += conn.execute(
            f"DELETE FROM corrections WHERE tenant_id = ? AND face_id IN ({marks})", (tenant_id, *chunk)
        ).rowcount
        conn.execute(f"DELETE FROM faces WHERE tenant_id = ? AND id IN ({marks})", (tenant_id, *chunk))
    if scrub:
        scrub_items(conn, tenant_id, faces=ids)
    return Erased(
        face_ids=ids, crop_paths=[r["crop_path"] for r in rows if r["crop_path"]], corrections=corrections
    )


def delete_persons(conn: sqlite3.Connection, tenant_id: str, person_ids: Sequence[str]) -> int:
    """Delete persons whose faces are already gone, inside the caller's transaction: the corrections naming
    them and every mention of them in item results go too. Returns how many corrections went."""
    corrections = 0
    for chunk in _chunks(list(person_ids)):
        marks = ",".join("?" * len(chunk))
        corrections += conn.execute(
            f"DELETE FROM corrections WHERE tenant_id = ? AND person_id IN ({marks})", (tenant_id, *chunk)
        ).rowcount
        conn.execute(f"DELETE FROM persons WHERE tenant_id = ? AND id IN ({marks})", (tenant_id, *chunk))
    scrub_items(conn, tenant_id, persons=person_ids)
    return corrections
