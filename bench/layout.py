"""The shape of the code, measured: lines per folder, import cycles, the largest modules, typed API responses.

    python bench/layout.py              # the table for src/frugalsense
    python bench/layout.py --markdown   # the same as Markdown

Imports are read from the source (every ``import`` statement, deferred ones inside functions included; imports
under ``if TYPE_CHECKING:`` are not run and are left out). A cycle is a strongly connected group of two or more
modules, or of two or more folders when every module is counted as its folder. "Typed" counts the 2xx responses
under ``/v1`` whose schema in ``/openapi.json`` resolves to an object with properties (or an array of them).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "frugalsense"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = module.split(".")
        if path.name != "__init__.py":
            base = base[:-1]
        if node.level:
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
    out = []
    for name in names:
        while name and name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in modules and name != module:
            out.append(name)
    return out


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at any depth of the file (deferred imports too)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        skipped = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped:
                graph[module].update(_targets(module, path, node, modules))
    return graph


def folder_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0] if len(parts) == 1 else module


def folder_graph(graph: dict[str, set[str]], modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each module counted as its folder (``frugalsense.ladder.core`` -> ``frugalsense.ladder``); top-level
    modules stay themselves."""

    def group(module: str) -> str:
        parts = module.split(".")
        if len(parts) >= 2 and modules[".".join(parts[:2])].name == "__init__.py":
            return ".".join(parts[:2])
        return module

    out: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        for target in targets:
            if group(source) != group(target):
                out[group(source)].add(group(target))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more nodes (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    nodes = sorted(set(graph) | {t for ts in graph.values() for t in ts})
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(iter(children), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            parts = [_resolve(s, spec) for s in schema[key]]
            typed = [p for p in parts if p.get("properties") or p.get("type") == "array"]
            return typed[0] if typed else schema
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        inner = _resolve(schema["items"], spec)
        return inner if inner.get("properties") else schema
    return schema


def typed_responses(spec: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(typed, total, untyped operations) over the 2xx responses of operations under /v1."""
    typed, total, untyped = 0, 0, []
    for path, operations in spec.get("paths", {}).items():
        if not path.startswith("/v1"):
            continue
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if not str(status).startswith("2"):
                    continue
                total += 1
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema is not None and _resolve(schema, spec).get("properties"):
                    typed += 1
                else:
                    untyped.append(f"{method.upper()} {path} {status}")
    return typed, total, untyped


def openapi_spec() -> dict[str, Any]:
    from tempfile import TemporaryDirectory

    from frugalsense.api.app import create_app
    from frugalsense.settings import Settings

    with TemporaryDirectory() as tmp:
        return create_app(Settings(data_dir=tmp)).openapi()


def rows() -> list[tuple[str, str]]:
    modules = module_files()
    graph = import_graph(modules)
    lines = {m: len(p.read_text().splitlines()) for m, p in modules.items()}
    per_folder: dict[str, int] = defaultdict(int)
    files: dict[str, int] = defaultdict(int)
    for module, path in modules.items():
        folder = str(path.parent.relative_to(PACKAGE.parent))
        per_folder[folder] += lines[module]
        files[folder] += 1
    module_cycles = cycles(graph)
    folder_cycles = cycles(folder_graph(graph, modules))
    largest = sorted(lines.items(), key=lambda item: -item[1])[:6]
    typed, total, _ = typed_responses(openapi_spec())
    out = [("folders", str(len(per_folder))), ("modules", str(len(modules)))]
    out.append(("lines", f"{sum(lines.values()):,}"))
    for folder, count in sorted(per_folder.items()):
        out.append((f"lines in {folder}/", f"{count:,} in {files[folder]} files"))
    out.append(("module import cycles", str(len(module_cycles))))
    out += [("  cycle", " <-> ".join(c)) for c in module_cycles]
    out.append(("folder import cycles", str(len(folder_cycles))))
    out += [("  cycle", " <-> ".join(c)) for c in folder_cycles]
    out.append(("modules over 600 lines", str(sum(1 for n in lines.values() if n > 600))))
    out += [("  largest", f"{m} {n}") for m, n in largest]
    out.append(("2xx responses under /v1 typed", f"{typed} of {total}"))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    table = rows()
    if args.markdown:
        print("| measure | value |\n| --- | --- |")
        for name, value in table:
            print(f"| {name} | {value} |")
        return
    width = max(len(name) for name, _ in table)
    for name, value in table:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
