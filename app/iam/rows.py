"""Row-level checks shared by the store's tables (run on the database thread, inside a
transaction), raising the client-facing `NotFound` / `Conflict`."""

from __future__ import annotations

from app.core.errors import NotFound
from app.iam.engine import Connection
from app.iam.errors import Conflict

# kind -> (table, key column, what the client is told)
TABLES = {
    "user": ("users", "uid", "User"),
    "group": ("groups", "gid", "Group"),
    "acl": ("acls", "rid", "ACL for resource"),
}


def row(conn: Connection, sql: str, *params: str) -> tuple[object, ...] | None:
    found: tuple[object, ...] | None = conn.execute(sql, params).fetchone()
    return found


def exists(conn: Connection, kind: str, key: str) -> bool:
    table, column, _ = TABLES[kind]
    return row(conn, f"SELECT 1 FROM {table} WHERE {column} = ?", key) is not None  # noqa: S608


def require(conn: Connection, kind: str, key: str) -> None:
    if not exists(conn, kind, key):
        raise NotFound(f"{TABLES[kind][2]} '{key}' not found")


def require_absent(conn: Connection, kind: str, key: str) -> None:
    if exists(conn, kind, key):
        raise Conflict(f"{TABLES[kind][2]} '{key}' already exists")


def set_description(conn: Connection, kind: str, key: str, description: str) -> None:
    table, column, _ = TABLES[kind]
    require(conn, kind, key)
    sql = f"UPDATE {table} SET description = ? WHERE {column} = ?"  # noqa: S608
    conn.execute(sql, (description, key))


def delete(conn: Connection, kind: str, key: str) -> None:
    table, column, _ = TABLES[kind]
    require(conn, kind, key)
    if kind in ("user", "group"):  # ACEs name principals without a foreign key
        conn.execute("DELETE FROM aces WHERE kind = ? AND principal = ?", (kind, key))
    conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))  # noqa: S608
