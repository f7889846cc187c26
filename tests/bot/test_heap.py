"""Freezing a worker's heap: garbage is collected first, what survives leaves the collector's scans."""

import gc
import weakref

from bot.heap import freeze_heap


class Node:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


def test_garbage_is_collected_and_the_survivors_frozen():
    garbage, kept = Node(), Node()
    gone = weakref.ref(garbage)
    del garbage
    try:
        freeze_heap()
        assert gone() is None  # collected, not frozen with the rest
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # out of every generation the collector scans
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())


def test_refreezing_lets_a_frozen_cycle_go_once_dropped():
    dropped = Node()
    gone = weakref.ref(dropped)
    try:
        freeze_heap()
        del dropped  # e.g. the model a hot reload swapped out
        gc.collect()
        assert gone() is not None  # frozen: a plain collection does not see it
        freeze_heap()
        assert gone() is None
    finally:
        gc.unfreeze()
