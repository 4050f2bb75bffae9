"""Sample inputs that need no network and no file from outside the installation.

- photo.jpg: Grace Hopper's official US Navy portrait (public domain), shipped in matplotlib's sample data
- receipt.png: a shop receipt drawn here with the DejaVu Sans font that matplotlib ships
- letter.pdf: a two-page letter drawn the same way
- voice-note.ogg: a short English voice note synthesised with espeak-ng, shipped in this package
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from frugalsense.errors import ModelUnavailableError

__all__ = ["RECEIPT_LINES", "write_samples"]

RECEIPT_LINES = (
    "HARBOUR HARDWARE SUPPLY",
    "12 Quay Street, Portsmouth",
    "Date: 2026-11-20  Time: 14:32",
    "",
    "Claw hammer 16oz        12.50",
    "Wood screws 4x40 (200)   6.90",
    "Masking tape 25mm        3.20",
    "Paint brush set          9.99",
    "",
    "SUBTOTAL                32.59",
    "VAT 20%                  6.52",
    "TOTAL                   39.11",
    "",
    "Paid by card. Thank you!",
)

LETTER_PAGES = (
    (
        "Dear customer,",
        "",
        "Thank you for your order of garden furniture.",
        "The delivery is planned for Friday morning.",
        "Please keep this letter with your invoice.",
    ),
    (
        "Returns policy",
        "",
        "Unused items can be returned within thirty days.",
        "Bring the receipt and the original packaging.",
    ),
)


def _matplotlib_data(relative: str) -> Path:
    try:
        import matplotlib
    except ImportError as exc:
        raise ModelUnavailableError("matplotlib is not installed: pip install matplotlib") from exc
    path = Path(matplotlib.get_data_path()) / relative
    if not path.is_file():
        raise ModelUnavailableError(f"matplotlib's {relative} is missing; reinstall matplotlib")
    return path


def _font(size: int, *, mono: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSansMono.ttf" if mono else "DejaVuSans.ttf"
    return ImageFont.truetype(str(_matplotlib_data(f"fonts/ttf/{name}")), size)


def _render(lines: tuple[str, ...], size: tuple[int, int], font: ImageFont.FreeTypeFont) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    y = 40
    for line in lines:
        draw.text((40, y), line, fill="black", font=font)
        y += int(font.size * 1.6)
    return image


def write_samples(folder: Path) -> list[Path]:
    """Write the samples into `folder` (created if needed) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = folder / "photo.jpg"
    shutil.copyfile(_matplotlib_data("sample_data/grace_hopper.jpg"), photo)

    receipt = folder / "receipt.png"
    _render(RECEIPT_LINES, (720, 40 + int(26 * 1.6) * len(RECEIPT_LINES) + 40), _font(26, mono=True)).save(receipt)

    letter = folder / "letter.pdf"
    pages = [_render(lines, (1240, 1754), _font(34)) for lines in LETTER_PAGES]
    pages[0].save(letter, "PDF", resolution=150.0, save_all=True, append_images=pages[1:])

    voice = folder / "voice-note.ogg"
    voice.write_bytes(resources.files("frugalsense.data").joinpath("voice-note.ogg").read_bytes())
    return [photo, receipt, letter, voice]
