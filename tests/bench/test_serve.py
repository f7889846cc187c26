"""The serving benchmark on a small scale: real server processes, the JSON shape it reports."""

from bench.serve import CONCURRENCY, SCRIPT, measure, table
from tests.servers import free_port


def test_echo_and_one_worker_bot_report_every_figure(example_model):
    echo = measure("echo", example_model, free_port(), growth=0, scale=0.02)
    bot = measure("bot_1_worker", example_model, free_port(), growth=50, scale=0.02)
    for result in (echo, bot):
        for name in CONCURRENCY:
            row = result[name]
            assert row["per_second"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
            for text, own in row["by_message"].items():
                assert 0 < own["p50_ms"] <= own["p99_ms"], text
    assert bot["workers"] == 1 and bot["parsers"] == 1  # the example config parses in a child process
    assert 50 < bot["rss_mb"] < 2000 and isinstance(bot["rss_growth_pct"], float)
    assert 0 < bot["private_mb"] < bot["rss_mb"]
    assert bot["private_mb"] < bot["worker_private_mb"]  # the parser counts with its worker
    assert bot["worker_rss_mb"] < 200 < bot["rss_mb"]  # only the parser holds torch and the model
    # At this scale each of the 64 customers says only the script's first message: its own
    # figures are the level's (and 64 samples put p99 at or past the slowest, so none is above).
    c64 = bot["c64"]
    assert list(c64["by_message"]) == [SCRIPT[0]]
    own = c64["by_message"][SCRIPT[0]]
    assert (own["p50_ms"], own["p99_ms"], own["over_p99"]) == (c64["p50_ms"], c64["p99_ms"], 0)
    assert "| bot_1_worker | hi |" in table({"echo": echo, "bot_1_worker": bot}, growth=50)
