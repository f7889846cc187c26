"""The conversation store: load a conversation, save a turn atomically, read transcripts.

The store is synchronous (sqlmodel); async callers run it in a worker thread. Writes are
serialized per process, because concurrent SQLite writers through a pool contend for the file
lock, and a whole turn (user message, bot replies, new state) is one transaction, so a turn is
either fully stored or not acknowledged at all.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Table, insert, update
from sqlalchemy import delete as sa_delete
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col, create_engine, select

from bot import json_codec
from bot.storage.tables import Annotation, AnyEvent, Conversation, Event, ModelVersion, utc_now

MIGRATIONS = Path(__file__).parent / "migrations"
# Multi-row "insert, or update on conflict" statements, per supported database.
UPSERTS: dict[str, Callable[[Table], Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
CONVERSATION_COLUMNS = [column.name for column in Conversation.__table__.columns]  # type: ignore[attr-defined]
CONVERSATION_UPDATES = ("updated_at", "session", "state", "handed_off")  # what a turn may change
EVENT_COLUMNS = [column.name for column in Event.__table__.columns if column.name != "id"]  # type: ignore[attr-defined]
# All of a turn's events in one statement, their ids read back in the order given.
INSERT_EVENTS = insert(Event.__table__).returning(Event.__table__.c.id, sort_by_parameter_order=True)  # type: ignore[attr-defined]


class StorageUnavailable(RuntimeError):
    """The database cannot be reached or refused the operation; the caller answers 503."""


@dataclass(frozen=True)
class TurnWrite:
    """What one turn stores: the conversation's new state, its events, and the earlier messages
    it delivered."""

    conversation: Conversation
    events: list[AnyEvent]
    delivered: Sequence[int] = ()


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def make_engine(url: str) -> Engine:
    """An engine for ``url`` whose JSON columns use `bot.json_codec`; SQLite gets WAL mode and a
    busy timeout so readers never block the writer."""
    codec: dict[str, Any] = {"json_serializer": json_codec.dumps, "json_deserializer": json_codec.loads}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **codec)

        @sa_event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, **codec)


class ConversationStore:
    """All database access of the runtime; every failure surfaces as `StorageUnavailable`."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine = make_engine(url)
        if self.engine.dialect.name not in UPSERTS:
            raise StorageUnavailable(f"unsupported database {self.engine.dialect.name!r}: slmbot stores conversations in SQLite or PostgreSQL")
        upsert = UPSERTS[self.engine.dialect.name](Conversation.__table__)
        changing = {name: upsert.excluded[name] for name in CONVERSATION_UPDATES}
        self.save_conversations = upsert.on_conflict_do_update(index_elements=["id"], set_=changing)
        self.write_lock = threading.Lock()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (safe to call on every start)."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with _storage_errors(), self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation row, or None for a new one."""
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            return session.get(Conversation, conversation_id)

    def conversation_and_undelivered(self, conversation_id: str) -> tuple[Conversation | None, list[Event]]:
        """What a turn starts from: the conversation (None for a new one) and its bot messages
        not yet delivered."""
        return self.conversations_and_undelivered([conversation_id])[0]

    def conversations_and_undelivered(self, conversation_ids: list[str]) -> list[tuple[Conversation | None, list[Event]]]:
        """`conversation_and_undelivered` for several conversations at once: one session, two
        queries, whatever their number (concurrent turns start together)."""
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            found = {c.id: c for c in session.exec(select(Conversation).where(col(Conversation.id).in_(set(conversation_ids))))}
            pending: dict[str, list[Event]] = {}
            if found:
                query = select(Event).where(
                    col(Event.conversation_id).in_(list(found)), Event.kind == "bot", col(Event.delivered).is_(False)
                )
                for event in session.exec(query.order_by(col(Event.id))):
                    pending.setdefault(event.conversation_id, []).append(event)
        return [(found.get(key), pending.get(key, [])) for key in conversation_ids]

    def save_turn(self, conversation: Conversation, events: Iterable[AnyEvent], delivered: Sequence[int] = ()) -> None:
        """Store the conversation's new state and the turn's events, and mark the ``delivered``
        events (sent with this turn's answer), in one transaction."""
        self._write([TurnWrite(conversation, list(events), delivered)])

    def save_turns(self, turns: list[TurnWrite]) -> list[StorageUnavailable | None]:
        """Store several conversations' turns in one transaction: one commit (one fsync) for all.

        When that fails, each turn is tried on its own, so a turn the database refuses fails
        alone. Returns, per turn, None (stored) or the error that kept it out.
        """
        try:
            self._write(turns)
            return [None] * len(turns)
        except StorageUnavailable as error:
            if len(turns) == 1:
                return [error]
        outcomes: list[StorageUnavailable | None] = []
        for turn in turns:
            try:
                self._write([turn])
                outcomes.append(None)
            except StorageUnavailable as error:
                outcomes.append(error)
        return outcomes

    def _write(self, turns: list[TurnWrite]) -> None:
        """One transaction of plain statements: an upsert per conversation and one multi-row
        insert of all events (the ORM's merge and flush cost several times more per turn).
        The events get their ids back, as if the ORM had stored them."""
        now = utc_now()
        for turn in turns:
            turn.conversation.updated_at = now
        conversations = [{name: getattr(turn.conversation, name) for name in CONVERSATION_COLUMNS} for turn in turns]
        events = [event for turn in turns for event in turn.events]
        with _storage_errors(), self.write_lock, self.engine.begin() as connection:
            connection.execute(self.save_conversations, conversations)
            if events:
                rows = [{name: getattr(event, name) for name in EVENT_COLUMNS} for event in events]
                inserted = connection.execute(INSERT_EVENTS, rows)
                for event, event_id in zip(events, inserted.scalars()):
                    event.id = event_id
            for turn in turns:
                _mark_delivered(connection, turn.delivered)

    def events(
        self, conversation_id: str, *, kinds: tuple[str, ...] | None = None, last: int | None = None
    ) -> list[Event]:
        """A conversation's events in order: optionally only some kinds, or the ``last`` few."""
        query = select(Event).where(Event.conversation_id == conversation_id)
        if kinds:
            query = query.where(col(Event.kind).in_(kinds))
        query = query.order_by(col(Event.id).desc()).limit(last) if last else query.order_by(col(Event.id))
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            found = list(session.exec(query))
        return found[::-1] if last else found

    def agent_conversations(self) -> list[str]:
        """Ids of conversations in which a human agent wrote (their replies are generator training data)."""
        query = select(Event.conversation_id).where(Event.source == "agent").distinct()
        with _storage_errors(), Session(self.engine) as session:
            return sorted(session.exec(query))

    def mark_delivered(self, event_ids: list[int]) -> None:
        """Agent messages that reached the customer."""
        if not event_ids:
            return
        with _storage_errors(), self.write_lock, Session(self.engine) as session:
            _mark_delivered(session, event_ids)
            session.commit()

    def shift_activity(self, conversation_id: str, minutes: float) -> None:
        """Move a conversation's last activity ``minutes`` into the past (tests simulate a pause)."""
        with _storage_errors(), self.write_lock, Session(self.engine) as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is not None:
                conversation.updated_at = as_utc(conversation.updated_at) - timedelta(minutes=minutes)
                session.add(conversation)
                session.commit()

    def idle_since(self, moment: datetime) -> list[str]:
        """Ids of conversations with no activity after ``moment``."""
        query = select(Conversation.id).where(col(Conversation.updated_at) < moment).order_by(col(Conversation.updated_at))
        with _storage_errors(), Session(self.engine) as session:
            return list(session.exec(query))

    def delete(self, conversation_ids: list[str]) -> None:
        """Remove conversations and every event of theirs."""
        with _storage_errors(), self.write_lock, Session(self.engine) as session:
            session.exec(sa_delete(Event).where(col(Event.conversation_id).in_(conversation_ids)))  # type: ignore[call-overload]
            session.exec(sa_delete(Conversation).where(col(Conversation.id).in_(conversation_ids)))  # type: ignore[call-overload]
            session.commit()

    def rewrite(self, conversation_id: str, new: Conversation, change: Callable[[Event], None]) -> None:
        """Move a conversation's events to ``new`` (a fresh id), each passed through ``change``,
        and drop the old conversation, in one transaction (anonymizing: the old id names the customer)."""
        with _storage_errors(), self.write_lock, Session(self.engine) as session:
            session.add(new)
            session.flush()
            for event in session.exec(select(Event).where(Event.conversation_id == conversation_id)):
                change(event)
                event.conversation_id = new.id
                flag_modified(event, "entities")
                flag_modified(event, "data")
                session.add(event)
            session.flush()
            session.exec(sa_delete(Conversation).where(col(Conversation.id) == conversation_id))  # type: ignore[call-overload]
            session.commit()

    def user_messages(self) -> Iterator[Event]:
        """Every stored user message, oldest first, read in pages."""
        last = 0
        while True:
            query = select(Event).where(Event.kind == "user", col(Event.id) > last).order_by(col(Event.id)).limit(1000)
            with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
                page = list(session.exec(query))
            if not page:
                return
            yield from page
            last = page[-1].id or last

    def event(self, event_id: int) -> Event | None:
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            return session.get(Event, event_id)

    def annotate(self, annotation: Annotation) -> Annotation:
        """Store a person's annotation (the annotated event itself stays as logged)."""
        with _storage_errors(), self.write_lock, Session(self.engine, expire_on_commit=False) as session:
            session.add(annotation)
            session.commit()
            return annotation

    def annotations(self, event_ids: Sequence[int] | None = None) -> list[Annotation]:
        """Annotations, oldest first: of the given events, or all of them."""
        query = select(Annotation).order_by(col(Annotation.id))
        if event_ids is not None:
            query = query.where(col(Annotation.event_id).in_(event_ids))
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            return list(session.exec(query))

    def unannotated_user_messages(self, newest: int) -> list[Event]:
        """The ``newest`` user messages nobody has annotated yet (candidates for the label queue)."""
        annotated = select(Annotation.event_id).where(col(Annotation.event_id).is_not(None))
        query = (
            select(Event)
            .where(Event.kind == "user", col(Event.id).not_in(annotated))
            .order_by(col(Event.id).desc())
            .limit(newest)
        )
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            return list(session.exec(query))

    def find_conversations(
        self,
        *,
        channel: str | None = None,
        since: datetime | None = None,
        below_confidence: float | None = None,
        fallback_responses: tuple[str, ...] = (),
        handed_off: bool = False,
        bad_rating: bool = False,
        limit: int = 100,
    ) -> list[Conversation]:
        """Conversations for review, latest activity first, narrowed by every filter given: a
        channel, activity since, a user message below a confidence, a fallback reply, a
        handoff, a reply rated bad."""
        query = select(Conversation)
        mine = Event.conversation_id == Conversation.id
        if channel:
            query = query.where(Conversation.channel == channel)
        if since is not None:
            query = query.where(col(Conversation.updated_at) >= since)
        if below_confidence is not None:
            query = query.where(select(Event.id).where(mine, Event.kind == "user", col(Event.confidence) < below_confidence).exists())
        if fallback_responses:
            query = query.where(select(Event.id).where(mine, col(Event.response).in_(fallback_responses)).exists())
        if handed_off:
            query = query.where(select(Event.id).where(mine, Event.kind == "handoff").exists())
        if bad_rating:
            rated = select(Annotation.id).join(Event, col(Annotation.event_id) == col(Event.id)).where(mine, Annotation.rating == "bad")
            query = query.where(rated.exists())
        query = query.order_by(col(Conversation.updated_at).desc()).limit(limit)
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            return list(session.exec(query))

    def handed_off(self) -> list[Conversation]:
        """Conversations waiting for a human agent, oldest activity first."""
        query = select(Conversation).where(col(Conversation.handed_off).is_(True)).order_by(col(Conversation.updated_at))
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            return list(session.exec(query))

    def record_model(
        self, kind: str, version: str, path: str, metrics: dict[str, Any], data_hash: str | None = None, parent: str | None = None
    ) -> ModelVersion:
        """Register a newly trained model and make it the active one of its kind."""
        with _storage_errors(), self.write_lock, Session(self.engine, expire_on_commit=False) as session:
            record = ModelVersion(kind=kind, version=version, path=path, metrics=metrics, data_hash=data_hash, parent=parent)
            _activate(session, record)
            session.commit()
            return record

    def promote(self, kind: str, version: str) -> ModelVersion:
        """Make a recorded version the active one of its kind.

        Raises:
            KeyError: no such version.
        """
        with _storage_errors(), self.write_lock, Session(self.engine, expire_on_commit=False) as session:
            query = select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.version == version).order_by(col(ModelVersion.id).desc())
            record = session.exec(query).first()
            if record is None:
                raise KeyError(f"no {kind} model version {version}")
            _activate(session, record)
            session.commit()
            return record

    def active_model(self, kind: str) -> ModelVersion | None:
        """The version of ``kind`` being served, if any."""
        query = select(ModelVersion).where(ModelVersion.kind == kind, col(ModelVersion.active).is_(True)).order_by(col(ModelVersion.id).desc())
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            return session.exec(query).first()

    def models(self, kind: str | None = None) -> list[ModelVersion]:
        """Recorded model versions, newest first."""
        query = select(ModelVersion).order_by(col(ModelVersion.id).desc())
        if kind:
            query = query.where(ModelVersion.kind == kind)
        with _storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            return list(session.exec(query))

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def _activate(session: Session, record: ModelVersion) -> None:
    """``record`` becomes the only active version of its kind, promoted now."""
    for previous in session.exec(select(ModelVersion).where(ModelVersion.kind == record.kind, col(ModelVersion.active).is_(True))):
        previous.active = False
        session.add(previous)
    record.active, record.promoted_at = True, utc_now()
    session.add(record)


def _mark_delivered(connection: Session | Connection, event_ids: Sequence[int]) -> None:
    if event_ids:
        connection.execute(update(Event).where(col(Event.id).in_(event_ids)).values(delivered=True))


@contextmanager
def _storage_errors() -> Iterator[None]:
    """Turn any SQLAlchemy failure into `StorageUnavailable`, naming its cause."""
    try:
        yield
    except SQLAlchemyError as error:
        raise StorageUnavailable(f"database error: {type(error).__name__}: {str(error).splitlines()[0]}") from error
