"""Custom actions: async Python functions in ``dialogues/actions.py`` and HTTP webhook actions.

    from bot.actions import ActionContext, action

    @action("lookup_order")
    async def lookup_order(context: ActionContext) -> dict:
        return {"status": "shipped"}

The decorator only marks a function; `load_actions_module` collects the marked functions of one
file into a fresh mapping, so there is no process-wide registry to leak between projects.
An action returns a JSON-ready dict; whatever goes wrong (exception, timeout, bad HTTP answer)
becomes an `ActionResult` with ``error`` set, which the flow engine turns into a clear reply.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx

from slm.errors import DataError

log = logging.getLogger(__name__)
ACTION_MARK = "__slmbot_action__"


@dataclass(frozen=True)
class ActionContext:
    """What an action may look at: the conversation, the flow's slots, the value being validated.

    ``data_dir`` is a folder the action may keep files in (the project's ``data/``; a temporary
    folder under `slmbot test`).
    """

    conversation_id: str
    sender: str
    flow: str
    slots: dict[str, Any]
    project: Path
    data_dir: Path
    latest_message: str = ""
    slot: str | None = None
    value: Any = None


@dataclass(frozen=True)
class ActionResult:
    """An action's outcome: ``data`` when it worked, ``error`` (a message for the logs) when not."""

    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


ActionFunction = Callable[[ActionContext], Awaitable[dict[str, Any] | None]]


def action(name: str) -> Callable[[ActionFunction], ActionFunction]:
    """Mark an async function as the custom action ``name``."""

    def mark(function: ActionFunction) -> ActionFunction:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"action '{name}' must be an async function")
        setattr(function, ACTION_MARK, name)
        return function

    return mark


def load_actions_module(path: Path) -> dict[str, ActionFunction]:
    """Import ``path`` and return its `action`-marked functions by name.

    Raises:
        DataError: the file fails to import, with the line where that is known.
    """
    spec = importlib.util.spec_from_file_location(f"slmbot_actions_{abs(hash(str(path.resolve())))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise DataError(path, error.lineno, f"syntax error: {error.msg}") from None
    except Exception as error:  # an author's module may raise anything while importing
        raise DataError(path, None, f"failed to import: {type(error).__name__}: {error}") from None
    return {getattr(f, ACTION_MARK): f for f in vars(module).values() if callable(f) and hasattr(f, ACTION_MARK)}


class ActionRunner:
    """Runs actions by name with a time limit; never raises for a failing action."""

    def __init__(
        self,
        python_actions: dict[str, ActionFunction],
        http_actions: dict[str, Any],
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.python_actions, self.http_actions, self.timeout = python_actions, http_actions, timeout
        self.client = client or httpx.AsyncClient()

    async def run(self, name: str, context: ActionContext) -> ActionResult:
        """Run action ``name``; failures come back as ``ActionResult(error=...)``."""
        try:
            if name in self.python_actions:
                # In the turn's own task: a task of its own (wait_for) costs the turn two more
                # passes of the event loop, several ms each when it is busy.
                async with asyncio.timeout(self.timeout):
                    data = await self.python_actions[name](context)
            elif name in self.http_actions:
                data = await self._post(self.http_actions[name], context)
            else:
                return ActionResult(error=f"unknown action '{name}'")
        except asyncio.TimeoutError:
            limit = self.http_actions[name].timeout if name in self.http_actions else self.timeout
            return self._failed(name, f"timed out after {limit:g} s")
        except Exception as error:  # an author's action may raise anything; the conversation goes on
            return self._failed(name, f"{type(error).__name__}: {error}")
        if data is not None and not isinstance(data, dict):
            return self._failed(name, f"returned {type(data).__name__}, expected a dict or None")
        try:  # the results join the conversation state, which is stored as JSON
            json.dumps(data)
        except (TypeError, ValueError) as error:
            return self._failed(name, f"returned data that is not JSON-ready: {error}")
        return ActionResult(data or {})

    async def _post(self, webhook: Any, context: ActionContext) -> dict[str, Any]:
        payload = {"action": webhook.name, **{k: v for k, v in vars(context).items() if k not in ("project", "data_dir")}}
        try:
            response = await self.client.post(webhook.url, json=payload, timeout=webhook.timeout)
        except httpx.TimeoutException:
            raise asyncio.TimeoutError from None
        if response.status_code >= 400:
            raise RuntimeError(f"{webhook.url} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise RuntimeError(f"{webhook.url} answered with a body that is not JSON") from None

    def _failed(self, name: str, reason: str) -> ActionResult:
        log.warning("action %s failed: %s", name, reason)
        return ActionResult(error=f"action '{name}' {reason}")

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
