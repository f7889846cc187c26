"""What a channel must provide so the dialogue manager can reach a user outside a request/response turn."""

from __future__ import annotations

from typing import Protocol

from bot.types import BotReply


class OutputChannel(Protocol):
    """Pushes messages to users, e.g. a human agent's reply while the user is not typing.

    Channels that cannot push (plain REST) register none: their messages stay undelivered in
    the store and go out with the user's next request.
    """

    name: str

    async def send(self, recipient: str, reply: BotReply) -> bool:
        """Deliver ``reply`` to ``recipient``; False when it could not be delivered now."""
        ...
