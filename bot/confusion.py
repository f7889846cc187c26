"""A confusion matrix of intents, drawn as a PNG: which intents the model mistakes for which.

A PNG opens anywhere a retraining report is read (an image viewer, a chat, a ticket); Pillow
draws it with its bundled font, so no plotting stack is needed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CELL = 24
PAD = 10
FONT_SIZE = 12


def confusion(gold: list[str], predicted: list[str]) -> tuple[list[str], list[list[int]]]:
    """Labels (sorted) and counts: row = the right intent, column = the predicted one."""
    labels = sorted(set(gold) | set(predicted))
    counts = Counter(zip(gold, predicted))
    return labels, [[counts[(row, column)] for column in labels] for row in labels]


def cell_colour(share: float, diagonal: bool) -> tuple[int, int, int]:
    """White to blue on the diagonal (right), white to red off it (mistakes), by share of the row."""
    target = (36, 84, 214) if diagonal else (214, 48, 36)
    return tuple(round(255 + (t - 255) * share) for t in target)  # type: ignore[return-value]


def save_confusion_png(labels: list[str], matrix: list[list[int]], title: str, path: Path) -> None:
    """Cells shaded by their share of the row, counts written in; names on both axes."""
    font = ImageFont.load_default(FONT_SIZE)
    name_width = max((round(font.getlength(label)) for label in labels), default=0) + PAD
    grid = CELL * len(labels)
    top = 2 * FONT_SIZE + 3 * PAD + name_width  # title lines, then the column names standing upright
    width = max(name_width + grid + 2 * PAD, round(font.getlength(title)) + 2 * PAD)
    image = Image.new("RGB", (width, top + grid + PAD), "white")
    draw = ImageDraw.Draw(image)
    draw.text((PAD, PAD), title, fill="black", font=font)
    draw.text((PAD, PAD + FONT_SIZE + 4), "rows: right intent, columns: predicted", fill=(85, 85, 85), font=font)
    for i, label in enumerate(labels):
        y = top + i * CELL + (CELL - FONT_SIZE) // 2
        draw.text((name_width - PAD // 2, y), label, fill="black", font=font, anchor="ra")
        column = Image.new("RGB", (name_width, CELL), "white")
        ImageDraw.Draw(column).text((0, (CELL - FONT_SIZE) // 2), label, fill="black", font=font)
        image.paste(column.rotate(90, expand=True), (name_width + i * CELL, top - name_width))
    for r, row in enumerate(matrix):
        total = sum(row) or 1
        for c, count in enumerate(row):
            x, y = name_width + c * CELL, top + r * CELL
            draw.rectangle((x, y, x + CELL, y + CELL), fill=cell_colour(count / total, r == c), outline=(221, 221, 221))
            if count:
                draw.text((x + CELL // 2, y + CELL // 2), str(count), fill="black", font=font, anchor="mm")
    image.save(path, format="PNG")
