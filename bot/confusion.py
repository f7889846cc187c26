"""A confusion matrix of intents, drawn as SVG: which intents the model mistakes for which.

SVG rather than PNG because it carries the intent names as text at any zoom and needs no
plotting library; every browser opens it.
"""

from __future__ import annotations

from collections import Counter
from html import escape

CELL = 22
MARGIN = 190


def confusion(gold: list[str], predicted: list[str]) -> tuple[list[str], list[list[int]]]:
    """Labels (sorted) and counts: row = the right intent, column = the predicted one."""
    labels = sorted(set(gold) | set(predicted))
    counts = Counter(zip(gold, predicted))
    return labels, [[counts[(row, column)] for column in labels] for row in labels]


def confusion_svg(labels: list[str], matrix: list[list[int]], title: str) -> str:
    """Cells shaded by their share of the row (blue on the diagonal, red off it), counts written in."""
    size = MARGIN + CELL * len(labels) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size + 20}" font-family="sans-serif" font-size="11">',
        f'<text x="10" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        '<text x="10" y="34" fill="#555">rows: right intent · columns: predicted</text>',
    ]
    for i, label in enumerate(labels):
        y = MARGIN + 20 + i * CELL
        parts.append(f'<text x="{MARGIN - 6}" y="{y + CELL * 0.7:.0f}" text-anchor="end">{escape(label)}</text>')
        x = MARGIN + i * CELL + CELL * 0.7
        parts.append(f'<text transform="translate({x:.0f},{MARGIN + 14}) rotate(-60)">{escape(label)}</text>')
    for r, row in enumerate(matrix):
        total = sum(row) or 1
        for c, count in enumerate(row):
            share = count / total
            colour = f"rgba(36,84,214,{share:.2f})" if r == c else f"rgba(214,48,36,{share:.2f})"
            x, y = MARGIN + c * CELL, MARGIN + 20 + r * CELL
            parts.append(f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{colour}" stroke="#ddd"/>')
            if count:
                parts.append(f'<text x="{x + CELL / 2:.0f}" y="{y + CELL * 0.7:.0f}" text-anchor="middle">{count}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
