"""The picture hash changed from a difference hash to the DCT hash the result cache uses: an upgraded database
drops the old values, and indexing an unchanged file again gives it the new hash without analysing it again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from PIL import Image

from frugalsense.media.phash import photo_hash
from frugalsense.search import SearchService
from frugalsense.settings import Settings
from frugalsense.store import DB_FILENAME, SQLiteStore


def test_an_upgrade_clears_old_hashes_and_reindexing_restores_them(
    tmp_path: Path, model_dir: Path, eval_dir: Path
) -> None:
    photo = eval_dir / "zeroshot-imagenet" / "images" / "n01514859_hen.JPEG"
    settings = Settings(data_dir=tmp_path / "data", model_cache=model_dir)
    with SearchService.open(settings) as service:
        tenant = service.store.create_tenant("shop").id
        first = service.index_paths(tenant, [str(photo)])
        assert first.counts["added"] == 1, first.to_dict()
        item_id = first.outcomes[0].item_id
        assert item_id is not None
        stored = service.items.get_item(tenant, item_id).phash
    pixels = np.asarray(Image.open(photo).convert("RGB"))
    assert stored == int(photo_hash(pixels))

    # As an older version left it: a difference hash stored, the schema one migration short.
    database = settings.data_dir / DB_FILENAME
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE items SET phash = ?", (0x0123_4567_89AB_CDEF,))
        conn.execute("DELETE FROM migrations WHERE name = 'm006_picture_hash'")
    conn.close()
    upgraded = SQLiteStore.open(settings)
    assert upgraded.migrated == ["m006_picture_hash"]
    upgraded.close()

    with SearchService.open(settings) as service:
        assert service.items.get_item(tenant, item_id).phash is None
        again = service.index_paths(tenant, [str(photo)])
        assert again.counts["unchanged"] == 1
        assert again.cpu_seconds == 0.0  # nothing analysed, only the first picture decoded
        assert service.items.get_item(tenant, item_id).phash == stored
        copy = tmp_path / "copy.jpg"
        Image.fromarray(pixels).resize((pixels.shape[1] // 2, pixels.shape[0] // 2)).save(copy, quality=70)
        service.index_paths(tenant, [str(copy)])
        groups = service.near_duplicates(tenant)
        assert [sorted(i.source for i in g) for g in groups] == [
            sorted([str(photo.resolve()), str(copy.resolve())])
        ]
