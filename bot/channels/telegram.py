"""Telegram through python-telegram-bot: an `Application` is wrapped (not subclassed) and fed
updates either by a webhook route (production) or by its own long-polling updater (development).

Buttons become inline keyboards and presses (callback queries) are answered and handled as the
user's message. Anything that is not a new text message never crashes the handler: media get a
polite "text only" reply, edits, channel posts and member updates are logged and ignored. Each
update id is processed once even when Telegram retries it or several workers receive it.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import warnings
from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import Forbidden, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.config import ConfigError, TelegramSettings
from bot.manager import DialogueManager
from bot.storage.store import StorageUnavailable
from bot.types import BotReply, UserMessage

log = logging.getLogger(__name__)
router = APIRouter(tags=["channels"])
CHANNEL = "telegram"
TOKEN_VARIABLE = "TELEGRAM_BOT_TOKEN"
SECRET_VARIABLE = "TELEGRAM_WEBHOOK_SECRET"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_MESSAGE_CHARS = 4096
MAX_CALLBACK_BYTES = 64
FLOOD_RETRIES = 5
UPDATES = ["message", "callback_query", "edited_message"]


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Cut ``text`` into messages of at most ``limit`` characters, at a line break or space when there is one."""
    parts: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit + 1), text.rfind(" ", 0, limit + 1))
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*parts, text] if text or not parts else parts


def keyboard(reply: BotReply) -> InlineKeyboardMarkup | None:
    """One button per row. Telegram caps callback data at 64 bytes: a longer payload sends the
    button's title instead, which the NLU model understands like typed text."""
    if not reply.buttons:
        return None
    rows = []
    for button in reply.buttons:
        data = button.payload if len(button.payload.encode()) <= MAX_CALLBACK_BYTES else button.title[:MAX_CALLBACK_BYTES]
        rows.append([InlineKeyboardButton(button.title, callback_data=data)])
    return InlineKeyboardMarkup(rows)


def retry_seconds(error: RetryAfter) -> float:
    """How long flood control asks to wait (python-telegram-bot 22 warns while ints remain its default)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        retry_after = error.retry_after
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)


def bot_token() -> str:
    token = os.environ.get(TOKEN_VARIABLE, "")
    if not token:
        raise ConfigError(f"[channels.telegram] is enabled but {TOKEN_VARIABLE} is not set in the environment")
    return token


def build_bot(settings: TelegramSettings, token: str) -> Bot:
    """A bare Bot API client (for `slmbot telegram set-webhook`)."""
    base = settings.base_url.rstrip("/")
    return Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")


class TelegramChannel:
    """Telegram updates in, bot replies out; also the push channel for agent messages."""

    name = CHANNEL

    def __init__(self, manager: DialogueManager, settings: TelegramSettings, token: str, secret: str | None, polling: bool) -> None:
        if not polling and not secret:
            raise ConfigError(f"Telegram webhook mode needs {SECRET_VARIABLE} in the environment (or run with --telegram-polling)")
        self.manager, self.settings, self.secret, self.polling = manager, settings, secret, polling
        base = settings.base_url.rstrip("/")
        builder = Application.builder().token(token).base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
        self.application = (builder if polling else builder.updater(None)).build()
        self.application.add_handler(TypeHandler(Update, self._drop_repeats), group=-1)
        self.application.add_handler(CallbackQueryHandler(self._on_button))
        self.application.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, self._on_text))
        self.application.add_handler(TypeHandler(Update, self._on_other))
        self.application.add_error_handler(self._on_error)
        self.failed: set[int] = set()

    async def start(self) -> None:
        await self.application.initialize()
        if self.polling:
            assert self.application.updater is not None
            await self.application.updater.start_polling(allowed_updates=UPDATES)
        await self.application.start()

    async def stop(self) -> None:
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    def verify(self, header: str | None) -> bool:
        return self.secret is not None and header is not None and hmac.compare_digest(header.encode(), self.secret.encode())

    async def process(self, update: Update) -> bool:
        """Handle a webhook update; False when it was not stored and Telegram should send it again."""
        await self.application.process_update(update)
        if update.update_id in self.failed:
            self.failed.discard(update.update_id)
            await self.manager.coordinator.forget(self._seen_key(update))
            return False
        return True

    async def send(self, recipient: str, reply: BotReply) -> bool:
        """Send ``reply`` to chat ``recipient``, split at Telegram's limit, the keyboard on the last part."""
        chat_id = int(recipient)
        parts = split_text(reply.text)
        try:
            for index, part in enumerate(parts):
                markup = keyboard(reply) if index == len(parts) - 1 else None
                await self._with_flood_retry(lambda: self.application.bot.send_message(chat_id, part, reply_markup=markup))
            if reply.image:
                await self._with_flood_retry(lambda: self.application.bot.send_photo(chat_id, reply.image))
        except Forbidden:
            log.warning("telegram chat %s blocked the bot; message not delivered", recipient)
            return False
        except TelegramError:
            log.exception("telegram chat %s: sending failed", recipient)
            return False
        return True

    async def _with_flood_retry(self, call):
        for attempt in range(FLOOD_RETRIES):
            try:
                return await call()
            except RetryAfter as error:
                if attempt == FLOOD_RETRIES - 1:
                    raise
                wait = retry_seconds(error)
                log.warning("telegram flood control: retrying in %.1f s", wait)
                await asyncio.sleep(wait)

    def _seen_key(self, update: Update) -> str:
        return f"telegram:{self.application.bot.id}:update:{update.update_id}"

    async def _drop_repeats(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await self.manager.coordinator.first_time(self._seen_key(update)):
            log.info("telegram update %d seen before; skipped", update.update_id)
            raise ApplicationHandlerStop

    async def _converse(self, chat_id: int, text: str) -> None:
        turn = await self.manager.handle(UserMessage(str(chat_id), text, CHANNEL))
        for reply in turn.replies:
            await self.send(str(chat_id), reply)

    async def _on_text(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None and message.text is not None
        text = self.settings.start_payload if message.text.split("@")[0].strip() == "/start" else message.text
        await self._converse(message.chat_id, text)

    async def _on_button(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer()
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        if query.data:
            await self._converse(chat_id, query.data)

    async def _on_other(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Media in a chat get a polite reply; edits, channel posts and member updates are only logged."""
        if update.message is not None:
            log.info("telegram chat %s sent a non-text message; asked for text", update.message.chat_id)
            await self.send(str(update.message.chat_id), self.manager.renderer.render("utter_text_only", {}))
            return
        kind = next((name for name in ("edited_message", "channel_post", "edited_channel_post", "my_chat_member", "chat_member")
                     if getattr(update, name, None) is not None), "other")
        log.info("telegram update %d (%s) ignored", update.update_id, kind)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update) and isinstance(context.error, StorageUnavailable):
            self.failed.add(update.update_id)
            log.error("telegram update %d not stored (%s); Telegram will send it again", update.update_id, context.error)
            return
        log.error("telegram update failed", exc_info=context.error)


@router.post("/webhooks/telegram", include_in_schema=False)
async def telegram_webhook(request: Request) -> dict[str, bool]:
    """Updates from Telegram; only requests carrying the registered secret are accepted."""
    channel: TelegramChannel | None = getattr(request.app.state, "telegram", None)
    if channel is None or channel.polling:
        raise HTTPException(404, "the Telegram webhook is not enabled on this server")
    if not channel.verify(request.headers.get(SECRET_HEADER)):
        raise HTTPException(403, f"missing or wrong {SECRET_HEADER}")
    try:
        update = Update.de_json(await request.json(), channel.application.bot)
    except (ValueError, TypeError, KeyError) as error:
        raise HTTPException(400, f"not a Telegram update: {error}") from None
    if update is None:
        raise HTTPException(400, "not a Telegram update: empty body")
    if not await channel.process(update):
        raise HTTPException(503, "the conversation store is unavailable; send the update again later")
    return {"ok": True}


async def set_webhook(settings: TelegramSettings, url: str) -> None:
    """Register ``url`` (this server's /webhooks/telegram) with Telegram, with the secret from the environment."""
    secret = os.environ.get(SECRET_VARIABLE, "")
    if not secret:
        raise ConfigError(f"set {SECRET_VARIABLE} first: Telegram sends it with every update and the server checks it")
    async with build_bot(settings, bot_token()) as bot:
        await bot.set_webhook(url, secret_token=secret, allowed_updates=UPDATES)
