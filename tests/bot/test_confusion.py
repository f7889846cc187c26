"""The retraining report's confusion matrix: counts per (right, predicted) pair, drawn as a PNG."""

from PIL import Image

from bot.confusion import CELL, cell_colour, confusion, save_confusion_png


def test_counts_rows_by_right_intent_and_columns_by_prediction():
    labels, matrix = confusion(["greet", "greet", "bye", "order"], ["greet", "bye", "bye", "greet"])
    assert labels == ["bye", "greet", "order"]
    assert matrix == [[1, 0, 0], [1, 1, 0], [0, 1, 0]]


def test_pngcell_colours_each_cell_by_its_share_of_the_row(tmp_path):
    labels, matrix = confusion(["a", "a", "b"], ["a", "b", "b"])
    path = tmp_path / "confusion.png"
    save_confusion_png(labels, matrix, "candidate v2", path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        colours = dict((colour, n) for n, colour in image.convert("RGB").getcolors(maxcolors=1 << 16))
    inside = (CELL - 2) ** 2 // 2  # a cell's fill, less its outline and the digit written in it
    assert colours.get(cell_colour(1.0, True), 0) > inside  # (b, b): all of b's messages right, full blue
    assert colours.get(cell_colour(0.5, True), 0) > inside  # (a, a): half right, light blue
    assert colours.get(cell_colour(0.5, False), 0) > inside  # (a, b): half mistaken for b, light red
    assert cell_colour(1.0, False) not in colours  # no row is all mistakes
