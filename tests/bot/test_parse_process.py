"""Parsing in a child process: the same parses as in the worker, batched, and never a lost turn."""

import asyncio
import os
import shutil
import signal

import pytest

from bot.parse_process import ParseProcess, ParseProcessError
from bot.understanding import Lexicon, Understanding
from slm.nlu import NLUModel

TEXTS = ["where is my order A-1042?", "hi", "/order_status", "I want to return the yoga mat from order C-3310", "thanks", "bye"]


def in_worker(model_dir, version: str = "v1") -> Understanding:
    return Understanding(NLUModel.load(model_dir), Lexicon.from_entries([]), version, model_dir)


def summary(parse) -> tuple:
    return parse.intent, round(parse.confidence, 4), [(e.entity, e.value, e.start, e.end) for e in parse.entities], parse.model_version


@pytest.fixture
def child(example_model):
    from bot.runtime import model_version

    understanding = ParseProcess(in_worker(example_model, model_version(example_model)))
    yield understanding
    understanding.child.kill()  # closed by the test, on its event loop; this is for a test that failed first


def run_then_close(child: ParseProcess, scenario):
    """Run ``scenario`` then close ``child`` on one event loop (the child's socket belongs to the loop that used it)."""

    async def both():
        try:
            return await scenario()
        finally:
            await child.close()

    return asyncio.run(both())


def test_the_child_parses_concurrent_texts_as_the_worker_does_and_batches_them(child):
    answers: list[int] = []
    answer = child._answer
    child._answer = lambda count, outcome: (answers.append(count), answer(count, outcome))

    async def scenario():
        return await asyncio.gather(*(child.submit(text) for text in TEXTS * 5))

    parses = run_then_close(child, scenario)
    expected = child.parse_many(TEXTS * 5)  # the worker's own copy of the model
    assert [summary(p) for p in parses] == [summary(p) for p in expected]
    assert not child.waiting and child.child.exitcode == 0 and child.parsing.startswith("worker")
    assert sum(answers) == len(TEXTS) * 5 and max(answers) > 1, answers  # texts that came while it was busy made one batch


def test_texts_in_flight_when_the_child_dies_are_parsed_in_the_worker(child):
    async def scenario():
        first = await child.submit("hi")
        os.kill(child.child.pid, signal.SIGKILL)
        in_flight = await asyncio.gather(*(child.submit(text) for text in TEXTS))
        return first, in_flight, await child.submit("where is my order A-1042?")

    first, in_flight, after = run_then_close(child, scenario)
    assert first.intent == "greet"
    assert [summary(p) for p in in_flight] == [summary(p) for p in child.parse_many(TEXTS)]
    assert after.intent == "order_status" and child.parsing == "worker (the child process exited)"


def test_close_waits_for_the_texts_sent_then_stops_the_child(child):
    async def scenario():
        sent = [asyncio.create_task(child.submit(text)) for text in TEXTS]
        await asyncio.sleep(0)  # every text is on its way to the child
        await child.close()
        return [task.result() for task in sent], await child.submit("hi")

    answered, later = asyncio.run(scenario())
    assert [p.intent for p in answered] == [p.intent for p in child.parse_many(TEXTS)]
    assert child.child.exitcode == 0 and later.intent == "greet"


def test_a_child_that_finds_another_model_in_the_directory_refuses_to_start(example_model, tmp_path):
    copy = tmp_path / "nlu"
    shutil.copytree(example_model, copy)
    with pytest.raises(ParseProcessError, match=r"did not start: ParseProcessError: .* now holds model \w+, not stale"):
        ParseProcess(in_worker(copy, "stale"))
    (copy / "weights.pt").write_bytes(b"truncated")
    with pytest.raises(ParseProcessError, match=r"did not start: CheckpointError"):
        ParseProcess(Understanding(NLUModel.load(example_model), Lexicon.from_entries([]), "v1", copy))


def test_only_a_model_loaded_from_a_directory_can_be_parsed_in_a_child(example_model):
    with pytest.raises(ValueError, match="directory"):
        ParseProcess(Understanding(NLUModel.load(example_model), Lexicon.from_entries([]), "v1"))
