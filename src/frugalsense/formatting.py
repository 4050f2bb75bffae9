"""Human-readable rendering of results for the terminal (JSON lives on the result types themselves)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from frugalsense.results import AnalysisResult, PageResult

if TYPE_CHECKING:
    from frugalsense.faces.results import CompareResult

__all__ = ["format_comparison", "format_result"]


def _page(page: PageResult, indent: str) -> list[str]:
    out: list[str] = []
    if page.faces is not None:
        out.append(f"{indent}faces: {len(page.faces)}")
        for face in page.faces:
            b = face.box
            out.append(f"{indent}  at x={b.x:.0f} y={b.y:.0f} {b.w:.0f}x{b.h:.0f}  score {face.score:.2f}")
    if page.labels is not None:
        shown = ", ".join(f"{label.name} {label.score:.2f}" for label in page.labels)
        out.append(f"{indent}labels: {shown or '-'}")
    if page.moderation is not None:
        m = page.moderation
        verdict = "FLAGGED" if m.flagged else "ok"
        out.append(f"{indent}moderation: nsfw {m.nsfw:.3f} ({verdict} at {m.threshold})")
    if page.text is not None:
        out.append(f"{indent}text: {len(page.text)} line(s)")
        for line in page.text[:40]:
            out.append(f"{indent}  {line.text}   [{line.confidence:.2f}]")
        if len(page.text) > 40:
            out.append(f"{indent}  ... {len(page.text) - 40} more")
    return out


def format_result(result: AnalysisResult) -> str:
    lines = [f"{result.name}  ({result.kind}, {result.mime})"]
    for page in result.pages:
        where = ""
        if page.page is not None:
            where = f"page {page.page}  "
        elif page.time_s is not None:
            where = f"t={page.time_s:.1f}s  "
        indent = "    " if len(result.pages) > 1 else "  "
        if len(result.pages) > 1:
            lines.append(f"  {where}{page.width}x{page.height}")
        lines.extend(_page(page, indent))
    if result.transcript is not None:
        t = result.transcript
        lines.append(f"  transcript ({t.duration_s:.1f}s, speech {t.speech_s:.1f}s): {t.text or '(no speech)'}")
    r = result.receipt
    lines.append(
        f"  cost: {r.cpu_seconds:.4f} CPU-s = ${r.cost_usd:.8f} at ${r.price_per_cpu_hour}/CPU-hour"
        f"  (wall {r.wall_ms:.0f} ms)"
    )
    for stage in r.stages:
        model = f" [{stage.model}]" if stage.model else ""
        lines.append(f"    {stage.stage:<16}{model:<28} {stage.cpu_s * 1000:9.1f} CPU-ms {stage.wall_ms:9.1f} ms")
    return "\n".join(lines)


def format_comparison(result: CompareResult) -> str:
    """The source face, then one row per target face: its box, similarity and decision; the best match marked."""
    a = result.box_a
    lines = [
        f"source: face {result.source_face} of {result.faces_in_source} at x={a.x:.0f} y={a.y:.0f} "
        f"{a.w:.0f}x{a.h:.0f}",
        f"{'face':>4}  {'box (x, y, w x h)':<22} {'similarity':>10}  decision",
    ]
    for face in result.target_faces:
        b = face.box
        box = f"{b.x:.0f}, {b.y:.0f}, {b.w:.0f} x {b.h:.0f}"
        decision = ("same" if face.same else "different") + (" (dlib looked too)" if face.climbed else "")
        best = "   <- best match" if face.index == result.best_match else ""
        lines.append(f"{face.index:>4}  {box:<22} {face.similarity:>10.3f}  {decision}{best}")
    verdict = "the same person" if result.same else "not the same person"
    r = result.receipt
    lines.append(f"{verdict} (threshold {result.threshold}); cost: {r.cpu_seconds:.4f} CPU-s = ${r.cost_usd:.8f}")
    return "\n".join(lines)
