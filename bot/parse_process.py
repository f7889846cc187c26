"""Parse in a child process, so that one worker uses both cores and never imports torch.

A worker's event loop, its turns and its database calls hold Python's GIL, and so does most of
parsing (tokenizing, building the batch, decoding tags); the model's forward pass gives the GIL
up around every operator but has to win it back from the loop each time. In one process the
two take turns on one core while the other idles. `ParseProcess` moves parsing into a child
process with its own GIL. The event loop writes each text to a socket as it comes and reads the
parses back; no thread waits in between. The child parses everything that arrived while it was
busy as one batch, so batches grow with the load here too.

Only the child loads the model, so the worker holds neither torch (~280 MB a process) nor a copy
of the weights. A child that dies is replaced, and the texts it had not answered go to the new
one: a crash costs the turns in flight a few seconds, not an answer. A text that was in flight
when two children died gets an error instead (it may be what kills them).
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
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from anyio import to_thread

from bot.heap import freeze_heap
from bot.types import Parse
from bot.understanding import Lexicon, LocalUnderstanding, Understanding
from slm.manifest import NLULabels

log = logging.getLogger(__name__)
START_TIMEOUT_S = 300.0
READY = "ready"
HEADER = struct.Struct("!I")  # each message: its pickle's length, then the pickle
DEATHS_PER_TEXT = 2  # children that may die with a text unanswered before it fails


class ParseProcessError(RuntimeError):
    """The child process could not load the model, or failed on a batch."""


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


@dataclass
class _Request:
    """A text sent (or to be sent) to the child, and the turn waiting for its parse."""

    text: str
    parse: asyncio.Future[Parse]
    deaths: int = 0  # children that died with it unanswered


class ParseProcess(Understanding):
    """An `Understanding` whose texts are parsed by a child process that loaded the model.

    The child answers texts in the order they were sent, so the waiting requests form a queue.
    """

    def __init__(self, directory: Path, lexicon: Lexicon, version: str, labels: NLULabels) -> None:
        """Start the child on the model in ``directory``; returns once the child has loaded it.

        Raises:
            ParseProcessError: the child could not load the model (the reason is in the message),
                or found another version there than ``version``.
        """
        super().__init__(lexicon, version, labels)
        self.directory = directory
        self.child, self.socket = _spawn(directory, lexicon, version)
        self.pending: deque[_Request] = deque()
        self.transport: asyncio.Transport | None = None  # set on the event loop, by the first text
        self.connecting: asyncio.Task[None] | None = None
        self.received = bytearray()
        self.closing = False
        self.restart_failure: str | None = None

    def submit(self, text: str) -> asyncio.Future[Parse]:
        """The child's parse of ``text``, to await. The text is queued when this is called, not
        when it is awaited: a turn that took this understanding just before a hot reload retired
        it is answered before the child stops.

        The future raises ParseProcessError when the child failed on the batch ``text`` was in
        (it goes on serving), no child could be started, or this understanding was closed.
        """
        parse: asyncio.Future[Parse] = asyncio.get_running_loop().create_future()
        if self.closing:
            parse.set_exception(ParseProcessError("the parsing process was shut down"))
            return parse
        self.pending.append(_Request(text, parse))
        if self.transport is not None:
            self.transport.write(frame(text))
        elif self.connecting is None:
            self.connecting = asyncio.create_task(self._connect())
        return parse

    @property
    def parsing(self) -> str:
        """Where texts are parsed now, for /health (an operator should see a child in trouble)."""
        if self.restart_failure is not None:
            return f"nowhere: no parsing process could be started ({self.restart_failure})"
        if self.socket is None and self.connecting is not None:  # the last child exited; the next is starting
            return "a new child process (the last one exited)"
        return "child process"

    @property
    def available(self) -> bool:
        """False once starting a new child failed, until the next text's attempt succeeds."""
        return self.restart_failure is None

    async def close(self) -> None:
        """Stop the child once the texts already sent are answered; later texts are refused."""
        self.closing = True
        if self.connecting is not None:
            await self.connecting
        await asyncio.gather(*(request.parse for request in self.pending), return_exceptions=True)
        if self.transport is not None:
            self.transport.close()
        elif self.socket is not None:
            self.socket.close()
        await to_thread.run_sync(self._reap)

    async def _connect(self) -> None:
        """Read the child's answers on this event loop (starting a child first if the last one
        died), then send it every text waiting."""
        try:
            if self.socket is None:
                await to_thread.run_sync(self._restart)
            assert self.socket is not None
            self.received = bytearray()
            transport, _ = await asyncio.get_running_loop().connect_accepted_socket(lambda: _Replies(self), self.socket)
        except Exception as error:  # noqa: BLE001 - the turns waiting learn why, and the next text tries again
            self.restart_failure = str(error)
            log.error("no parsing process: %s", error)
            self._fail(list(self.pending), ParseProcessError(f"no parsing process could be started: {error}"))
            return
        finally:
            self.connecting = None
        self.transport, self.restart_failure = transport, None
        for request in self.pending:
            transport.write(frame(request.text))

    def _restart(self) -> None:
        self._reap()
        self.child, self.socket = _spawn(self.directory, self.lexicon, self.version)

    def _answer(self, count: int, outcome: list[Parse] | str) -> None:
        """The child's answer to the next ``count`` texts: their parses, or why it failed."""
        for index in range(count):
            request = self.pending.popleft()
            if request.parse.done():  # its turn was cancelled (the client went away)
                continue
            if isinstance(outcome, str):
                request.parse.set_exception(ParseProcessError(f"the parsing process failed on a batch of {count}: {outcome}"))
            else:
                request.parse.set_result(outcome[index])

    def _orphaned(self) -> None:
        """The socket closed: at shutdown, or because the child died, which a new child replaces."""
        self.transport, self.socket = None, None
        if self.closing:
            self._fail(list(self.pending), ParseProcessError("the parsing process exited while shutting down"))
            return
        log.error("the parsing process exited (code %s) with %d texts unanswered: starting another", self.child.exitcode, len(self.pending))
        for request in self.pending:
            request.deaths += 1
        self._fail([r for r in self.pending if r.deaths >= DEATHS_PER_TEXT], ParseProcessError(f"{DEATHS_PER_TEXT} parsing processes exited while parsing it"))
        if self.connecting is None:
            self.connecting = asyncio.create_task(self._connect())

    def _fail(self, requests: list[_Request], error: ParseProcessError) -> None:
        for request in requests:
            self.pending.remove(request)
            if not request.parse.done():
                request.parse.set_exception(error)

    def _reap(self) -> None:
        self.child.join(timeout=10)
        if self.child.is_alive():
            self.child.kill()
            self.child.join()


def _spawn(directory: Path, lexicon: Lexicon, version: str) -> tuple[BaseProcess, socket.socket]:
    """Start a child on the model in ``directory`` and wait until it has loaded it (blocking).

    Raises:
        ParseProcessError: the child could not load it (the message says why).
    """
    parent_end, child_end = socket.socketpair()
    context = multiprocessing.get_context("spawn")  # fork would copy the parent's threads and locks mid-use
    child = context.Process(target=_serve, args=(child_end, directory, lexicon, version), name="slmbot-parser", daemon=True)
    child.start()
    child_end.close()  # the child's exit then reads as end of file here
    parent_end.settimeout(START_TIMEOUT_S)
    answer = _receive(parent_end, bytearray()) or [f"no answer (it exited, or took over {START_TIMEOUT_S:.0f} s)"]
    if answer[0] != READY:
        child.kill()
        child.join()
        parent_end.close()
        raise ParseProcessError(f"the parsing process did not start: {answer[0]}")
    parent_end.setblocking(False)
    return child, parent_end


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

    from bot.process_memory import bound_kernel_cache, tune_malloc
    from bot.trained_models import load_nlu

    # Ctrl-C in a terminal reaches the whole process group, and systemd stops a service by
    # signalling every process of it: the worker shuts down and closes the socket, which stops
    # this process once the texts already sent are answered (so does the worker's death).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
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
    understanding = LocalUnderstanding(nlu, lexicon, version)
    freeze_heap()
    connection.sendall(frame(READY))
    received = bytearray()
    while texts := _receive(connection, received):  # empty: the worker closed its end, or exited
        try:
            outcome: list[Parse] | str = understanding.parse_many(texts)
        except Exception:  # noqa: BLE001 - the worker raises it for this batch's turns
            outcome = traceback.format_exc(limit=3)
        connection.sendall(frame((len(texts), outcome)))
