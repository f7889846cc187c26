"""`slmbot shell`: chat with the bot in the terminal, through the real dialogue manager and store."""

from __future__ import annotations

import asyncio

from rich.console import Console

from bot.runtime import BotRuntime
from bot.types import BotReply, UserMessage

CHANNEL = "shell"


def _show(console: Console, replies: list[BotReply]) -> list[str]:
    """Print replies; returns the button payloads so the user can answer with a number."""
    payloads = []
    for reply in replies:
        style = "magenta" if reply.source == "agent" else "cyan"
        console.print(f"[bold {style}]bot[/]  {reply.text}", highlight=False)
        for button in reply.buttons:
            payloads.append(button.payload)
            console.print(f"      [{len(payloads)}] {button.title}", highlight=False)
    return payloads


async def chat(runtime: BotRuntime, console: Console, sender: str, debug: bool) -> None:
    """Read lines until EOF or /exit; a number picks a button of the last reply."""
    manager = runtime.manager
    payloads: list[str] = []
    console.print("Type a message (/exit to quit). Numbers pick buttons.", style="dim")
    while True:
        try:
            text = (await asyncio.to_thread(console.input, "[bold green]you[/]  ")).strip()
        except (EOFError, KeyboardInterrupt):
            break
        if text == "/exit":
            break
        if not text:
            continue
        if text.isdigit() and 0 < int(text) <= len(payloads):
            text = payloads[int(text) - 1]
        turn = await manager.handle(UserMessage(sender, text, CHANNEL))
        if debug:
            entities = ", ".join(f"{e.entity}={e.value!r} ({e.extractor} {e.confidence:.2f})" for e in turn.parse.entities)
            console.print(f"      [dim]{turn.parse.intent} {turn.parse.confidence:.2f}  {entities}[/]", highlight=False)
        payloads = _show(console, turn.replies)
    await runtime.close()
