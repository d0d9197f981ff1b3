"""The IAM store: users, service accounts, groups and memberships in SQLite, plus the ACLs
(`self.acls`, acl_store.py).

Every method runs its SQL on the database thread (db.py) and raises `NotFound` / `Conflict`
with a message for the client; identifiers are validated by the caller (names.py). The store
is also the embedded authorizer's `GrantSource`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from app.authz.model import SUPERUSER_RID, Action, Grant
from app.core.errors import NotFound
from app.iam import rows
from app.iam.acl_store import AclStore
from app.iam.db import Database
from app.iam.engine import TOPIC_IAM, ChangeListener, Connection, Engine
from app.iam.errors import Conflict
from app.iam.records import Group, User

_USER = "SELECT uid, description, password_hash, public_key FROM users"
_INSERT_USER = "INSERT INTO users (uid, description, password_hash, public_key) VALUES (?,?,?,?)"
# `ON CONFLICT DO NOTHING`: SQLite's INSERT OR IGNORE in the SQL PostgreSQL also speaks.
_ADD_ACL = "INSERT INTO acls VALUES (?, ?) ON CONFLICT DO NOTHING"
_ADD_GROUP = "INSERT INTO groups VALUES (?, ?) ON CONFLICT DO NOTHING"
_ADD_ACE = "INSERT INTO aces VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
_GRANTS = (
    "SELECT rid, action FROM aces WHERE kind = 'user' AND principal = ?"
    " UNION SELECT a.rid, a.action FROM aces a JOIN memberships m"
    " ON a.kind = 'group' AND a.principal = m.gid WHERE m.uid = ?"
)


# Some user holds dcos:superuser full (directly or through a group): the one way back into the
# admin API. A change that would leave none is refused (409); `logway iam recover-superuser`
# restores one for an operator who holds the store (issue 12 §5).
_SUPERUSER_EXISTS = (
    "SELECT 1 FROM users u WHERE EXISTS (SELECT 1 FROM aces a WHERE a.rid = ?"
    " AND a.action = 'full' AND ((a.kind = 'user' AND a.principal = u.uid)"
    " OR (a.kind = 'group' AND a.principal IN (SELECT gid FROM memberships m"
    " WHERE m.uid = u.uid)))) LIMIT 1"
)
NO_SUPERUSER_LEFT = (
    "Refused: this change would leave no user holding dcos:superuser full, and with it "
    "no way back into the IAM's admin API; grant another user dcos:superuser full first"
)


def _superuser_exists(conn: Connection) -> bool:
    return rows.row(conn, _SUPERUSER_EXISTS, SUPERUSER_RID) is not None


T = TypeVar("T")


class SuperuserKept:
    """The `Engine` under the store, whatever its kind: an IAM write that would leave no
    superuser where there was one is rolled back with a 409 (`Conflict`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def write(self, fn: Callable[[Connection], T], *, topic: str = TOPIC_IAM) -> T:
        if topic != TOPIC_IAM:
            return await self._engine.write(fn, topic=topic)

        def guarded(conn: Connection) -> T:
            had = _superuser_exists(conn)
            result = fn(conn)
            if had and not _superuser_exists(conn):
                raise Conflict(NO_SUPERUSER_LEFT)
            return result

        return await self._engine.write(guarded, topic=topic)


class IamStore:
    """Over an `Engine`: a path is the SQLite file (db.py), as before."""

    def __init__(self, db: Path | Engine, *, busy_timeout: float = 5.0) -> None:
        engine: Engine = Database(db, busy_timeout=busy_timeout) if isinstance(db, Path) else db
        self._engine = engine  # what it is (login limits and keys look); writes go guarded
        self._db: Engine = SuperuserKept(engine)
        self.acls = AclStore(self._db)

    @property
    def engine(self) -> Engine:
        return self._engine

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    # GrantSource (app.authz.model)

    async def grants_for(self, uid: str) -> Iterable[Grant]:
        def query(conn: Connection) -> list[Grant]:
            return [Grant(rid, Action(a)) for rid, a in conn.execute(_GRANTS, (uid, uid))]

        return await self._db.read(query)

    def generation(self) -> int:
        return self._db.generation()

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call `listener(topic)` on this event loop after every change of the IAM, from any
        process or replica sharing the store: the hook that ends streams a revoke or a
        deleted user no longer allows (issue 12). Returns the unsubscribe function."""
        return self._db.subscribe(listener)

    # Users and service accounts

    async def create_user(self, user: User) -> None:
        def insert(conn: Connection) -> None:
            rows.require_absent(conn, "user", user.uid)
            conn.execute(_INSERT_USER, _user_row(user))

        await self._db.write(insert)

    async def find_user(self, uid: str) -> User | None:
        def query(conn: Connection) -> User | None:
            found = conn.execute(f"{_USER} WHERE uid = ?", (uid,)).fetchone()
            return None if found is None else User(*found)

        return await self._db.read(query)

    async def user_exists(self, uid: str) -> bool:
        return await self._db.read(lambda conn: rows.exists(conn, "user", uid))

    async def get_user(self, uid: str) -> User:
        user = await self.find_user(uid)
        if user is None:
            raise NotFound(f"User '{uid}' not found")
        return user

    async def list_users(self, *, services: bool) -> list[User]:
        where = "public_key IS NOT NULL" if services else "public_key IS NULL"
        sql = f"{_USER} WHERE {where} ORDER BY uid"
        return await self._db.read(lambda conn: [User(*found) for found in conn.execute(sql)])

    async def update_user(
        self,
        uid: str,
        *,
        description: str | None = None,
        password_hash: str | None = None,
        public_key: str | None = None,
    ) -> None:
        """Set the given fields; a user keeps its kind (password vs public key)."""

        def update(conn: Connection) -> None:
            found = conn.execute(f"{_USER} WHERE uid = ?", (uid,)).fetchone()
            if found is None:
                raise NotFound(f"User '{uid}' not found")
            user = User(*found)
            if password_hash is not None and user.is_service:
                raise Conflict(f"'{uid}' is a service account: it has a public key, no password")
            if public_key is not None and not user.is_service:
                raise Conflict(f"'{uid}' is a user account: it has no public key")
            conn.execute(
                "UPDATE users SET description = ?, password_hash = ?, public_key = ? WHERE uid = ?",
                (
                    user.description if description is None else description,
                    user.password_hash if password_hash is None else password_hash,
                    user.public_key if public_key is None else public_key,
                    uid,
                ),
            )

        await self._db.write(update)

    async def delete_user(self, uid: str) -> None:
        await self._db.write(lambda conn: rows.delete(conn, "user", uid))

    # Groups and memberships

    async def create_group(self, group: Group) -> None:
        def insert(conn: Connection) -> None:
            rows.require_absent(conn, "group", group.gid)
            conn.execute("INSERT INTO groups VALUES (?, ?)", _group_row(group))

        await self._db.write(insert)

    async def get_group(self, gid: str) -> Group:
        def query(conn: Connection) -> Group:
            found = rows.row(conn, "SELECT gid, description FROM groups WHERE gid = ?", gid)
            if found is None:
                raise NotFound(f"Group '{gid}' not found")
            return Group(str(found[0]), str(found[1]))

        return await self._db.read(query)

    async def list_groups(self) -> list[Group]:
        sql = "SELECT gid, description FROM groups ORDER BY gid"
        return await self._db.read(lambda conn: [Group(*found) for found in conn.execute(sql)])

    async def update_group(self, gid: str, *, description: str) -> None:
        await self._db.write(lambda conn: rows.set_description(conn, "group", gid, description))

    async def delete_group(self, gid: str) -> None:
        await self._db.write(lambda conn: rows.delete(conn, "group", gid))

    async def add_member(self, gid: str, uid: str) -> None:
        def insert(conn: Connection) -> None:
            rows.require(conn, "group", gid)
            rows.require(conn, "user", uid)
            if rows.row(conn, "SELECT 1 FROM memberships WHERE gid = ? AND uid = ?", gid, uid):
                raise Conflict(f"User '{uid}' is already a member of group '{gid}'")
            conn.execute("INSERT INTO memberships (gid, uid) VALUES (?, ?)", (gid, uid))

        await self._db.write(insert)

    async def remove_member(self, gid: str, uid: str) -> None:
        def delete(conn: Connection) -> None:
            rows.require(conn, "group", gid)
            rows.require(conn, "user", uid)
            cursor = conn.execute("DELETE FROM memberships WHERE gid = ? AND uid = ?", (gid, uid))
            if cursor.rowcount == 0:
                raise NotFound(f"User '{uid}' is not a member of group '{gid}'")

        await self._db.write(delete)

    async def members(self, gid: str) -> list[User]:
        def query(conn: Connection) -> list[User]:
            rows.require(conn, "group", gid)
            sql = f"{_USER} WHERE uid IN (SELECT uid FROM memberships WHERE gid = ?) ORDER BY uid"  # noqa: S608
            return [User(*found) for found in conn.execute(sql, (gid,))]

        return await self._db.read(query)

    async def groups_of(self, uid: str) -> list[Group]:
        def query(conn: Connection) -> list[Group]:
            rows.require(conn, "user", uid)
            found = conn.execute(
                "SELECT gid, description FROM groups WHERE gid IN"
                " (SELECT gid FROM memberships WHERE uid = ?) ORDER BY gid",
                (uid,),
            )
            return [Group(*g) for g in found]

        return await self._db.read(query)

    async def has_users(self) -> bool:
        return await self._db.read(
            lambda conn: rows.row(conn, "SELECT 1 FROM users LIMIT 1") is not None
        )

    async def restore_superuser(self, uid: str, *, password_hash: str | None) -> bool:
        """Make `uid` hold `dcos:superuser` `full` directly (the recovery path, for an operator
        with the store in hand): created with `password_hash` if it does not exist, its
        password replaced when one is given. True if the user was created."""

        def restore(conn: Connection) -> bool:
            created = not rows.exists(conn, "user", uid)
            if created:
                conn.execute(_INSERT_USER, (uid, "Superuser (recovered)", password_hash, None))
            elif password_hash is not None:
                conn.execute(
                    "UPDATE users SET password_hash = ?, public_key = NULL WHERE uid = ?",
                    (password_hash, uid),
                )
            conn.execute(_ADD_ACL, (SUPERUSER_RID, "Superuser"))
            conn.execute(_ADD_ACE, (SUPERUSER_RID, "user", uid, Action.FULL.value))
            return created

        return await self._db.write(restore)

    async def bootstrap_superuser(self, user: User, *, group: Group, rid: str) -> bool:
        """Create `user` holding `rid` `full` directly and through `group`, in one transaction,
        only if the store has no user at all. False if it has one (another worker may have
        won the race)."""

        def create(conn: Connection) -> bool:
            if rows.row(conn, "SELECT 1 FROM users LIMIT 1"):
                return False
            conn.execute(_INSERT_USER, _user_row(user))
            conn.execute(_ADD_ACL, (rid, "Superuser"))
            conn.execute(_ADD_GROUP, _group_row(group))
            conn.execute("INSERT INTO memberships VALUES (?, ?)", (group.gid, user.uid))
            for kind, principal in (("user", user.uid), ("group", group.gid)):
                conn.execute(
                    _ADD_ACE,
                    (rid, kind, principal, Action.FULL.value),
                )
            return True

        return await self._db.write(create)


def _group_row(group: Group) -> tuple[str, str]:
    return (group.gid, group.description)


def _user_row(user: User) -> tuple[str, str, str | None, str | None]:
    return (user.uid, user.description, user.password_hash, user.public_key)
