"""The shape the architecture document promises, checked on the source: no import cycles (deferred imports
included), no module over 600 lines, a server that never loads the offline calibration package, and heavy
optional parts left out of the embedded default."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600


def _layout() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layout", ROOT / "bench" / "layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def layout() -> ModuleType:
    return _layout()


def test_the_cycle_finder_finds_a_deferred_cycle(layout: ModuleType, tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import x\n")
    (package / "b.py").write_text("x = 1\n\ndef later():\n    from pkg import a\n    return a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    graph = layout.import_graph(layout.module_files(package))
    assert layout.cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_import_cycles_between_modules_or_folders(layout: ModuleType) -> None:
    modules = layout.module_files()
    graph = layout.import_graph(modules)
    assert layout.cycles(graph) == []
    assert layout.cycles(layout.folder_graph(graph, modules)) == []


def test_no_module_is_over_600_lines(layout: ModuleType) -> None:
    lines = {name: len(path.read_text().splitlines()) for name, path in layout.module_files().items()}
    assert {name: n for name, n in lines.items() if n > MAX_LINES} == {}


def _imported_by(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_the_server_never_imports_the_calibration_package() -> None:
    loaded = _imported_by("import frugalsense.api.app, frugalsense.cli")
    assert "frugalsense.api.app" in loaded
    assert sorted(m for m in loaded if m.startswith("frugalsense.calibration")) == []


def test_the_embedded_default_imports_no_optional_heavy_parts() -> None:
    loaded = _imported_by("import frugalsense.api.app, frugalsense.analyze, frugalsense.faces, frugalsense.search")
    heavy = {"ray", "psycopg", "psycopg2", "pgvector", "playwright", "torch", "scipy"}
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []
