"""Custom actions of the example shop bot, backed by a small demo order database.

The database (SQLite, ``<data_dir>/shop.db``) is created with demo orders the first time an
action needs it; delete the file (with the bot stopped) to start over. A real shop would call
its order system here.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.actions import ActionContext, action

# order id, status, contents, carrier, eta, delivered_on, days since delivery, address
ORDERS = [
    ("A-1042", "processing", "wireless headphones", "", "Friday", "", None, "3 Park Lane, Leeds"),
    ("B-2001", "shipped", "blender, coffee grinder", "DHL", "tomorrow", "", None, "8 Queen Street, York"),
    ("C-3310", "delivered", "yoga mat, water bottle", "UPS", "", "24 November", 6, "14 Oak Avenue, Bath"),
    ("D-4821", "delivered", "desk lamp", "DHL", "", "2 September", 89, "5 Hill Road, Derby"),
    ("E-5090", "processing", "running shoes", "", "Monday", "", None, "21 Station Road, Hull"),
    ("F-6001", "cancelled", "backpack", "", "", "", None, "9 Mill Lane, Ely"),
    ("G-7123", "delivered", "electric kettle", "UPS", "", "10 November", 20, "2 Church Street, Wells"),
    ("H-8034", "shipped", "bluetooth speaker", "DPD", "Wednesday", "", None, "77 King Road, Bristol"),
]
# order id, amount, status, date
REFUNDS = [("G-7123", "39.90 EUR", "paid out", "27 November")]
# product, in stock, price, back in stock on
STOCK = [
    ("wireless headphones", 1, "89.00 EUR", ""),
    ("blender", 1, "59.90 EUR", ""),
    ("coffee grinder", 0, "", "14 December"),
    ("yoga mat", 1, "24.90 EUR", ""),
    ("water bottle", 1, "12.50 EUR", ""),
    ("desk lamp", 1, "34.00 EUR", ""),
    ("running shoes", 0, "", "20 December"),
    ("backpack", 1, "45.00 EUR", ""),
    ("electric kettle", 1, "39.90 EUR", ""),
    ("bluetooth speaker", 1, "49.00 EUR", ""),
    ("standing desk", 0, "", "10 January"),
    ("phone charger", 1, "19.90 EUR", ""),
    ("winter jacket", 1, "119.00 EUR", ""),
]
RETURN_WINDOW_DAYS = 30
BUSY_TIMEOUT_MS = 30_000
CHECKPOINT_EVERY = 500  # writes between two checkpoints of the write-ahead log, made by the writing thread


SCHEMA = (
    """CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT, contents TEXT, carrier TEXT, eta TEXT,
                            delivered_on TEXT, days_since_delivery INTEGER, address TEXT)""",
    "CREATE TABLE refunds (order_id TEXT, amount TEXT, status TEXT, date TEXT)",
    "CREATE TABLE stock (product TEXT PRIMARY KEY, in_stock INTEGER, price TEXT, restock TEXT)",
    "CREATE TABLE returns (id INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT, product TEXT, email TEXT)",
)


def _seeded(connection: sqlite3.Connection) -> bool:
    return connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'orders'").fetchone() is not None


_setting_up = threading.Lock()  # the threads of this process set the file up one at a time


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    connection.row_factory = sqlite3.Row
    with _setting_up:
        if not _seeded(connection):
            # Worker processes may get here at once: one creates, the others wait.
            connection.execute("BEGIN IMMEDIATE")
            if not _seeded(connection):
                for statement in SCHEMA:
                    connection.execute(statement)
                connection.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ORDERS)
                connection.executemany("INSERT INTO refunds VALUES (?, ?, ?, ?)", REFUNDS)
                connection.executemany("INSERT INTO stock VALUES (?, ?, ?, ?)", STOCK)
            connection.commit()
        # Many conversations query the shop at once: with WAL their reads never wait for a write,
        # and a commit appends to the log instead of syncing a rollback journal. Switching needs
        # the file to itself (two threads switching while one seeds deadlock), hence the lock;
        # the mode is kept in the file, so later connections find it set.
        connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")  # see _query: the writing thread checkpoints
    return connection


_opened = threading.local()  # each thread keeps its connections: opening one costs more than a query
# Writes that find the file locked (another worker process is writing) wait for it in this one
# thread, never on the event loop: SQLite lets one writer in at a time, and a writer that finds
# the file locked sleeps in its busy handler (up to 100 ms a try) where it queues here, woken at once.
_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shop-writer")
_writes = itertools.count(1)


def _connect(data_dir: Path) -> sqlite3.Connection:
    """This thread's connection to the shop database of ``data_dir``, opened (and seeded) once."""
    connections: dict[Path, sqlite3.Connection] = _opened.__dict__.setdefault("connections", {})
    path = data_dir / "shop.db"
    if path not in connections:
        connections[path] = _open(path)
    return connections[path]


def _rows(connection: sqlite3.Connection, sql: str, args: tuple[Any, ...], commit: bool = False) -> list[dict[str, Any]]:
    """The statement's rows; with ``commit``, committed, or rolled back if it fails (so that no
    transaction is left open on the connection, holding the file's write lock)."""
    if not commit:
        return [dict(row) for row in connection.execute(sql, args)]
    with connection:
        return [dict(row) for row in connection.execute(sql, args)]


def _write_without_waiting(connection: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Write and commit if the file's write lock is free right now; raise SQLite's "locked"
    error, with nothing written, if it is not (the event loop must never wait for it)."""
    connection.execute("PRAGMA busy_timeout = 0")
    try:
        return _rows(connection, sql, args, commit=True)
    finally:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def _checkpoint(data_dir: Path) -> None:
    _connect(data_dir).execute("PRAGMA wal_checkpoint(PASSIVE)")


async def _query(context: ActionContext, sql: str, *args: Any, write: bool = False) -> list[dict[str, Any]]:
    """Run one statement here, on the event loop, unless it is a write that finds the file locked.

    A read by primary key takes ~7 us and, with WAL, never waits for a writer; a write and its
    commit take ~15 us when nobody else is writing. A trip to a thread and back costs ~130 us of
    CPU and, under load, two passes of the busy event loop (several ms) before the turn goes on.
    So only a write that finds another process writing goes to the writing thread, which waits
    there. The log is checkpointed by that thread too, as a checkpoint syncs the file to disk.
    """
    if not write:
        return _rows(_connect(context.data_dir), sql, args)
    if next(_writes) % CHECKPOINT_EVERY == 0:
        _writer.submit(_checkpoint, context.data_dir)
    try:
        return _write_without_waiting(_connect(context.data_dir), sql, args)
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:  # the primary code of any "busy"
            raise
    return await asyncio.get_running_loop().run_in_executor(_writer, lambda: _rows(_connect(context.data_dir), sql, args, commit=True))


async def _order(context: ActionContext, order_id: str) -> dict[str, Any] | None:
    rows = await _query(context, "SELECT * FROM orders WHERE id = ?", order_id.upper())
    return rows[0] if rows else None


async def _unshipped_order(context: ActionContext) -> tuple[dict[str, Any] | None, str]:
    """The slot's order while it can still be changed (not shipped yet), else None and why not."""
    order = await _order(context, context.slots["order_id"])
    if order is not None and order["status"] == "processing":
        return order, ""
    return None, f"it is already {order['status'] if order else 'unknown'}"


@action("validate_order_id")
async def validate_order_id(context: ActionContext) -> dict[str, Any]:
    """An order id is valid when the order exists; the value is normalised to upper case."""
    order = await _order(context, str(context.value))
    if order is None:
        return {"valid": False}
    return {"valid": True, "value": order["id"], "contents": order["contents"], "status": order["status"]}


@action("lookup_order")
async def lookup_order(context: ActionContext) -> dict[str, Any]:
    order = await _order(context, context.slots["order_id"])
    return order or {"status": "unknown"}


@action("validate_product_in_order")
async def validate_product_in_order(context: ActionContext) -> dict[str, Any]:
    """The product to return must be one of the order's items (matched loosely, case-insensitively)."""
    order = await _order(context, context.slots["order_id"])
    wanted = str(context.value).lower().strip()
    items = [item.strip() for item in order["contents"].split(",")] if order else []
    match = next((item for item in items if item in wanted or wanted in item), None)
    return {"valid": match is not None, "value": match}


@action("create_return")
async def create_return(context: ActionContext) -> dict[str, Any]:
    order = await _order(context, context.slots["order_id"])
    if order is None or order["status"] != "delivered":
        return {"created": False, "reason": "the order hasn't been delivered yet"}
    if order["days_since_delivery"] > RETURN_WINDOW_DAYS:
        return {"created": False, "reason": f"it was delivered more than {RETURN_WINDOW_DAYS} days ago"}
    # The code comes from the new row's own id: two returns created at once never share one.
    created = await _query(
        context, "INSERT INTO returns (order_id, product, email) VALUES (?, ?, ?) RETURNING id",
        order["id"], context.slots["product"], context.slots["email"], write=True,
    )
    return {"created": True, "code": f"R-{1000 + created[0]['id']}"}


@action("lookup_refund")
async def lookup_refund(context: ActionContext) -> dict[str, Any]:
    rows = await _query(context, "SELECT * FROM refunds WHERE order_id = ?", context.slots["order_id"])
    return rows[0] if rows else {"status": "none"}


@action("cancel_order")
async def cancel_order(context: ActionContext) -> dict[str, Any]:
    order, reason = await _unshipped_order(context)
    if order is None:
        return {"cancelled": False, "reason": reason}
    await _query(context, "UPDATE orders SET status = 'cancelled' WHERE id = ?", order["id"], write=True)
    return {"cancelled": True}


@action("change_address")
async def change_address(context: ActionContext) -> dict[str, Any]:
    order, reason = await _unshipped_order(context)
    if order is None:
        return {"changed": False, "reason": reason}
    await _query(context, "UPDATE orders SET address = ? WHERE id = ?", context.slots["address"], order["id"], write=True)
    return {"changed": True}


@action("check_stock")
async def check_stock(context: ActionContext) -> dict[str, Any]:
    """Stock of a product; plural or loose names match ("blenders", "the yoga mat")."""
    wanted = str(context.slots["product"]).lower().strip()
    if not wanted:
        return {"known": False}
    for row in await _query(context, "SELECT * FROM stock"):
        if row["product"] in wanted or wanted.rstrip("s") in row["product"]:
            return {"known": True, "in_stock": bool(row["in_stock"]), "price": row["price"], "restock": row["restock"], "name": row["product"]}
    return {"known": False}
