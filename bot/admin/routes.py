"""Server-rendered review pages: conversations with filters, transcripts with every parse,
annotation forms, the label queue and the agent console (reply, hand back).

Forms post ``application/x-www-form-urlencoded``; every POST checks the session's CSRF token
and answers with a redirect, so a reload never posts twice.
"""

from __future__ import annotations

import hmac
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Awaitable
from urllib.parse import parse_qsl, urlencode

from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bot.admin import auth
from bot.annotation import AnnotationError, Correction, annotate, queue_to_label
from bot.api.deps import RuntimeDep
from bot.api.schemas import MAX_MESSAGE_CHARS
from bot.manager import ConversationNotFound, NotHandedOff
from bot.metrics import FALLBACK_RESPONSES
from bot.privacy import Redactor
from bot.storage.store import as_utc
from bot.storage.tables import utc_now

router = APIRouter(prefix="/admin", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates" / "admin"))
COOKIE = "slmbot_admin"
SESSION_HOURS = 8.0


class LoginRequired(Exception):
    """No valid session: the handler redirects to the login page."""


async def current(request: Request) -> auth.Session:
    """The signed-in session (checking a signed cookie: no reason to hop to a thread, see `bot.api.deps`)."""
    session = auth.read(request.cookies.get(COOKIE))
    if session is None or session.user not in auth.accounts():
        raise LoginRequired
    return session


SessionDep = Annotated[auth.Session, Depends(current)]


async def form(request: Request, session: auth.Session) -> dict[str, str]:
    """The posted fields, once the CSRF token in them matches the session's."""
    fields = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    if not hmac.compare_digest(fields.get("csrf", ""), session.csrf):
        raise HTTPException(403, "the form is out of date or not from this site (CSRF check failed): reload the page")
    return fields


def back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def agent_action(page: str, conversation_id: str, action: Awaitable[object]) -> Response:
    """Run an agent's action on a conversation, then back to its page (with the reason when the
    conversation is not with an agent)."""
    try:
        await action
    except ConversationNotFound:
        raise HTTPException(404, f"no conversation '{conversation_id}'") from None
    except NotHandedOff as error:
        return back(f"{page}?{urlencode({'error': str(error)})}")
    return back(page)


@router.get("/static/admin.js")
async def script() -> FileResponse:
    return FileResponse(Path(__file__).resolve().parent.parent / "static" / "admin.js", media_type="text/javascript")


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, failed: bool = False) -> Response:
    return templates.TemplateResponse(request, "login.html", {"failed": failed, "closed": not auth.accounts()})


@router.post("/login")
async def login(request: Request) -> Response:
    fields = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    name, password = fields.get("name", ""), fields.get("password", "")
    stored = auth.accounts().get(name)
    if stored is None or not await to_thread.run_sync(auth.verify_password, password, stored):
        return back("/admin/login?failed=1")
    response = back("/admin")
    response.set_cookie(COOKIE, auth.issue(name, SESSION_HOURS), max_age=int(SESSION_HOURS * 3600), httponly=True, samesite="strict", path="/admin")
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep) -> Response:
    await form(request, session)
    response = back("/admin/login")
    response.delete_cookie(COOKIE, path="/admin")
    return response


@router.get("", response_class=HTMLResponse)
async def conversations(
    request: Request, runtime: RuntimeDep, session: SessionDep, channel: str = "", days: str = "",
    low: bool = False, fallback: bool = False, handoff: bool = False, bad: bool = False,
) -> Response:
    """Conversations, latest first, with the review filters (an empty form field means no filter)."""
    window = int(days) if days.isdigit() else 0
    filters = {
        "channel": channel or None, "since": utc_now() - timedelta(days=window) if window > 0 else None,
        "below_confidence": runtime.config.dialogue.fallback_threshold if low else None, "fallback_responses": tuple(FALLBACK_RESPONSES) if fallback else (),
        "handed_off": handoff, "bad_rating": bad,
    }
    found = await to_thread.run_sync(lambda: runtime.store.find_conversations(**filters))
    context = {"session": session, "found": found, "as_utc": as_utc,
               "filters": {"channel": channel, "days": window, "low": low, "fallback": fallback, "handoff": handoff, "bad": bad}}
    return templates.TemplateResponse(request, "conversations.html", context)


@router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
async def transcript(request: Request, conversation_id: str, runtime: RuntimeDep, session: SessionDep, error: str = "") -> Response:
    """Every message with its parse, model version and annotations, with forms to correct them."""
    conversation = await to_thread.run_sync(runtime.store.conversation, conversation_id)
    if conversation is None:
        raise HTTPException(404, f"no conversation '{conversation_id}'")
    events = await to_thread.run_sync(lambda: runtime.store.events(conversation_id, kinds=("user", "bot", "handoff", "handback")))
    notes: dict[int, list[Any]] = {}
    ids = [e.id for e in events if e.id is not None]
    for annotation in await to_thread.run_sync(runtime.store.annotations, ids):
        notes.setdefault(annotation.event_id or 0, []).append(annotation)
    spans = {e.id: json.dumps([{"start": x["start"], "end": x["end"], "entity": x["entity"]} for x in e.entities]) for e in events}
    context = {
        "session": session, "conversation": conversation, "events": events, "notes": notes, "error": error, "as_utc": as_utc, "spans": spans,
        "intents": sorted(set(runtime.manager.understanding.intents)),
        "entity_types": list(runtime.manager.understanding.entity_types),
        "max_chars": MAX_MESSAGE_CHARS,
    }
    return templates.TemplateResponse(request, "conversation.html", context)


@router.post("/events/{event_id}/annotate")
async def annotate_event(request: Request, event_id: int, runtime: RuntimeDep, session: SessionDep) -> Response:
    fields = await form(request, session)
    event = await to_thread.run_sync(runtime.store.event, event_id)
    if event is None:
        raise HTTPException(404, f"no event {event_id}")
    page = f"/admin/conversations/{event.conversation_id}"
    try:
        entities = json.loads(fields["entities"]) if fields.get("entities", "").strip() else None
        correction = Correction(
            session.user, fields.get("intent") or None, entities, fields.get("rating") or None, fields.get("reply", "").strip() or None
        )
        annotation = annotate(event, correction, Redactor(runtime.config.privacy.patterns))
    except (AnnotationError, ValueError, TypeError, KeyError) as error:
        return back(f"{page}?{urlencode({'error': f'message {event_id}: {error}'})}#event-{event_id}")
    await to_thread.run_sync(runtime.store.annotate, annotation)
    return back(f"{page}#event-{event_id}")


@router.post("/conversations/{conversation_id}/reply")
async def agent_reply(request: Request, conversation_id: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    fields = await form(request, session)
    text = fields.get("text", "").strip()
    page = f"/admin/conversations/{conversation_id}"
    if not text or len(text) > MAX_MESSAGE_CHARS:
        return back(f"{page}?{urlencode({'error': f'a reply has 1 to {MAX_MESSAGE_CHARS} characters'})}")
    return await agent_action(page, conversation_id, runtime.manager.agent_reply(conversation_id, text, session.user))


@router.post("/conversations/{conversation_id}/handback")
async def hand_back(request: Request, conversation_id: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    await form(request, session)
    page = f"/admin/conversations/{conversation_id}"
    return await agent_action(page, conversation_id, runtime.manager.hand_back(conversation_id, session.user))


@router.get("/queue", response_class=HTMLResponse)
async def queue(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Messages to label: where model versions disagree first, then the least certain."""
    queue = await queue_to_label(runtime.store, runtime.manager.understanding, 50)
    return templates.TemplateResponse(request, "queue.html", {"session": session, "queue": queue})


@router.get("/handoffs", response_class=HTMLResponse)
async def handoffs(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The agent console's queue: conversations waiting for a person, longest-waiting first."""
    waiting = await to_thread.run_sync(runtime.store.handed_off)
    return templates.TemplateResponse(request, "handoffs.html", {"session": session, "waiting": waiting, "as_utc": as_utc})
