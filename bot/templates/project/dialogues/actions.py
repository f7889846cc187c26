"""Custom actions: async functions marked with @action, called by flow steps by name."""

from __future__ import annotations

from bot.actions import ActionContext, action


@action("book_table")
async def book_table(context: ActionContext) -> dict:
    """A real bot would call a booking system here; this one makes up a reference."""
    return {"reference": f"T-{context.slots['guests']}{len(context.conversation_id):03d}"}
