"""Parse in a child process, so that one worker uses both cores.

A worker's event loop, its turns and its database calls hold Python's GIL, and so does most of
parsing (tokenizing, building the batch, decoding tags); the model's forward pass gives the GIL
up around every operator but has to win it back from the loop each time. In one process the
two take turns on one core while the other idles. `ParseProcess` moves the parsing of turns into
a child process with its own GIL. The event loop writes each text to a socket as it comes and
reads the parses back; no thread waits in between. The child parses everything that arrived
while it was busy as one batch, so batches grow with the load here too.

The worker keeps its own copy of the model, which parses for callers outside the event loop (the
admin pages' queue) and takes over if the child dies: a crashed child costs speed, never a turn.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import signal
import socket
import struct
import traceback
from collections import deque
from pathlib import Path
from typing import Any

from anyio import to_thread

from bot.heap import freeze_heap
from bot.types import Parse
from bot.understanding import Lexicon, Understanding

log = logging.getLogger(__name__)
START_TIMEOUT_S = 300.0
READY = "ready"
HEADER = struct.Struct("!I")  # each message: its pickle's length, then the pickle


class ParseProcessError(RuntimeError):
    """The child process could not load the model, or failed on a batch."""


class _ChildGone(Exception):
    """The child exited with texts unanswered: they are parsed in the worker instead."""


def frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def unframe(buffer: bytearray) -> list[Any]:
    """Take every complete message off the front of ``buffer`` (a partial one stays)."""
    messages = []
    while len(buffer) >= HEADER.size:
        (length,) = HEADER.unpack_from(buffer)
        if len(buffer) < HEADER.size + length:
            break
        messages.append(pickle.loads(buffer[HEADER.size : HEADER.size + length]))
        del buffer[: HEADER.size + length]
    return messages


class ParseProcess(Understanding):
    """An `Understanding` whose `submit` is answered by a child process that loaded the same model.

    The child answers texts in the order they were sent, so the waiting futures form a queue.
    """

    def __init__(self, local: Understanding) -> None:
        """Start the child on ``local``'s model directory; returns once the child has loaded it.

        Raises:
            ValueError: ``local`` does not know its model directory.
            ParseProcessError: the child could not load the model (the reason is in the message).
        """
        if local.directory is None:
            raise ValueError("a parsing process loads the model from its directory, and this one was not loaded from one")
        super().__init__(local.nlu, local.lexicon, local.version, local.directory)
        self.socket, child_end = socket.socketpair()
        context = multiprocessing.get_context("spawn")  # fork would copy torch's threads and locks mid-use
        self.child = context.Process(target=_serve, args=(child_end, local.directory, local.lexicon, local.version), name="slmbot-parser", daemon=True)
        self.child.start()
        child_end.close()  # the child's exit then reads as end of file here
        self.socket.settimeout(START_TIMEOUT_S)
        answer = _receive(self.socket, bytearray()) or [f"no answer (it exited, or took over {START_TIMEOUT_S:.0f} s)"]
        if answer[0] != READY:
            self.child.kill()
            self.socket.close()
            raise ParseProcessError(f"the parsing process did not start: {answer[0]}")
        self.socket.setblocking(False)
        self.alive = True
        self.waiting: deque[asyncio.Future[Parse]] = deque()
        self.connected: asyncio.Future[asyncio.Transport] | None = None
        self.received = bytearray()

    async def submit(self, text: str) -> Parse:
        """The child's parse of ``text`` (the worker's own, once the child is gone or closing).

        Raises:
            ParseProcessError: the child failed on the batch ``text`` was in (it goes on serving).
        """
        if self.alive:
            if self.connected is None:
                self.connected = asyncio.ensure_future(self._connect())
            transport = await self.connected
            if self.alive:
                future: asyncio.Future[Parse] = asyncio.get_running_loop().create_future()
                self.waiting.append(future)
                transport.write(frame(text))
                try:
                    return await future
                except _ChildGone:
                    pass
        return await super().submit(text)

    @property
    def parsing(self) -> str:
        """``child process``, or, once it is gone, ``worker`` (an operator should see that on /health)."""
        return "child process" if self.alive else "worker (the child process exited)"

    async def close(self) -> None:
        """Stop the child once the texts already sent are answered; later texts are parsed here."""
        self.alive = False
        await asyncio.gather(*self.waiting, return_exceptions=True)
        if self.connected is not None:
            (await self.connected).close()
        else:
            self.socket.close()
        await to_thread.run_sync(self._reap)

    async def _connect(self) -> asyncio.Transport:
        transport, _ = await asyncio.get_running_loop().connect_accepted_socket(lambda: _Replies(self), self.socket)
        return transport

    def _answer(self, count: int, outcome: list[Parse] | str) -> None:
        """The child's answer to the next ``count`` texts: their parses, or why it failed."""
        for index in range(count):
            future = self.waiting.popleft()
            if future.done():  # its turn was cancelled (the client went away)
                continue
            if isinstance(outcome, str):
                future.set_exception(ParseProcessError(f"the parsing process failed on a batch of {count}: {outcome}"))
            else:
                future.set_result(outcome[index])

    def _orphaned(self) -> None:
        if self.alive:
            log.error("the parsing process exited (code %s): parsing in the worker from now on", self.child.exitcode)
        self.alive = False
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(_ChildGone())

    def _reap(self) -> None:
        self.child.join(timeout=10)
        if self.child.is_alive():
            self.child.kill()
            self.child.join()


class _Replies(asyncio.Protocol):
    """The worker's end of the socket: hands each answer to the `ParseProcess` it serves."""

    def __init__(self, owner: ParseProcess) -> None:
        self.owner = owner

    def data_received(self, data: bytes) -> None:
        self.owner.received += data
        for count, outcome in unframe(self.owner.received):
            self.owner._answer(count, outcome)

    def connection_lost(self, _error: Exception | None) -> None:
        self.owner._orphaned()


def _receive(connection: socket.socket, buffer: bytearray) -> list[Any]:
    """The complete messages in ``buffer`` and, if there are none yet, in what arrives next on the
    blocking ``connection``: one recv takes everything already sent. Empty when the other end
    closed (or, with a timeout set, stayed silent)."""
    while not (messages := unframe(buffer)):
        try:
            chunk = connection.recv(1 << 16)
        except TimeoutError:
            return []
        if not chunk:
            return []
        buffer += chunk
    return messages


def _serve(connection: socket.socket, directory: Path, lexicon: Lexicon, version: str) -> None:
    """The child: load the model the worker serves, then answer texts until the worker closes the socket.

    Whatever arrived while a batch was parsed is the next batch; each answer says how many texts it answers.
    """
    import torch

    from bot.runtime import load_nlu
    from bot.serve import bound_kernel_cache, tune_malloc

    # Ctrl-C in a terminal reaches the whole process group: the worker shuts down and closes the
    # socket, which stops this process once the texts already sent are answered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)  # the worker has the other core
    tune_malloc()
    bound_kernel_cache()
    try:
        nlu, loaded_version = load_nlu(directory)
        if loaded_version != version:
            raise ParseProcessError(f"{directory} now holds model {loaded_version}, not {version}, which the worker serves")
    except Exception as error:  # noqa: BLE001 - whatever it is, the worker reports it
        connection.sendall(frame(f"{type(error).__name__}: {error}"))
        return
    understanding = Understanding(nlu, lexicon, version)
    freeze_heap()
    connection.sendall(frame(READY))
    received = bytearray()
    while texts := _receive(connection, received):  # empty: the worker closed its end, or exited
        try:
            outcome: list[Parse] | str = understanding.parse_many(texts)
        except Exception:  # noqa: BLE001 - the worker raises it for this batch's turns
            outcome = traceback.format_exc(limit=3)
        connection.sendall(frame((len(texts), outcome)))
