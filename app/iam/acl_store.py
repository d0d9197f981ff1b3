"""ACLs and their entries (ACEs) in the IAM store, and the permissions they add up to."""

from __future__ import annotations

from app.authz.model import Action, PrincipalKind
from app.core.errors import NotFound
from app.iam import rows
from app.iam.engine import Connection, Engine
from app.iam.errors import Conflict
from app.iam.records import Ace, Acl, HeldPermission

_ACE_EXISTS = "SELECT 1 FROM aces WHERE rid = ? AND kind = ? AND principal = ? AND action = ?"


class AclStore:
    def __init__(self, db: Engine) -> None:
        self._db = db

    async def create(self, acl: Acl) -> None:
        def insert(conn: Connection) -> None:
            rows.require_absent(conn, "acl", acl.rid)
            conn.execute("INSERT INTO acls VALUES (?, ?)", (acl.rid, acl.description))

        await self._db.write(insert)

    async def get(self, rid: str) -> Acl:
        def query(conn: Connection) -> Acl:
            found = rows.row(conn, "SELECT rid, description FROM acls WHERE rid = ?", rid)
            if found is None:
                raise NotFound(f"ACL for resource '{rid}' not found")
            return Acl(str(found[0]), str(found[1]))

        return await self._db.read(query)

    async def list_all(self) -> list[Acl]:
        sql = "SELECT rid, description FROM acls ORDER BY rid"
        return await self._db.read(lambda conn: [Acl(*row) for row in conn.execute(sql)])

    async def update(self, rid: str, *, description: str) -> None:
        await self._db.write(lambda conn: rows.set_description(conn, "acl", rid, description))

    async def delete(self, rid: str) -> None:
        await self._db.write(lambda conn: rows.delete(conn, "acl", rid))

    async def grant(self, ace: Ace) -> None:
        def insert(conn: Connection) -> None:
            _require_parties(conn, ace)
            if rows.row(conn, _ACE_EXISTS, *_key(ace)):
                raise Conflict(f"{_who(ace)} already has '{ace.action}' on '{ace.rid}'")
            conn.execute("INSERT INTO aces VALUES (?, ?, ?, ?)", _key(ace))

        await self._db.write(insert)

    async def revoke(self, ace: Ace) -> None:
        def delete(conn: Connection) -> None:
            _require_parties(conn, ace)
            cursor = conn.execute(
                "DELETE FROM aces WHERE rid = ? AND kind = ? AND principal = ? AND action = ?",
                _key(ace),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"{_who(ace)} has no '{ace.action}' on '{ace.rid}'")

        await self._db.write(delete)

    async def entries(self, rid: str) -> list[Ace]:
        """The ACEs of one ACL, users first."""

        def query(conn: Connection) -> list[Ace]:
            rows.require(conn, "acl", rid)
            found = conn.execute(
                "SELECT rid, kind, principal, action FROM aces WHERE rid = ?"
                " ORDER BY kind DESC, principal, action",
                (rid,),
            )
            return [Ace(r, PrincipalKind(k), p, Action(a)) for r, k, p, a in found]

        return await self._db.read(query)

    async def held_by_user(self, uid: str) -> list[HeldPermission]:
        """What `uid` holds, directly (first) and through its groups."""

        def query(conn: Connection) -> list[HeldPermission]:
            rows.require(conn, "user", uid)
            found = conn.execute(
                "SELECT a.rid, l.description, a.action, NULL AS gid FROM aces a"
                " JOIN acls l ON l.rid = a.rid WHERE a.kind = 'user' AND a.principal = ?"
                " UNION ALL SELECT a.rid, l.description, a.action, m.gid FROM aces a"
                " JOIN acls l ON l.rid = a.rid JOIN memberships m"
                " ON a.kind = 'group' AND a.principal = m.gid WHERE m.uid = ?"
                " ORDER BY gid NULLS FIRST, 1, 3",
                (uid, uid),
            )
            return [HeldPermission(r, d, Action(a), g) for r, d, a, g in found]

        return await self._db.read(query)

    async def held_by_group(self, gid: str) -> list[HeldPermission]:
        def query(conn: Connection) -> list[HeldPermission]:
            rows.require(conn, "group", gid)
            found = conn.execute(
                "SELECT a.rid, l.description, a.action FROM aces a JOIN acls l"
                " ON l.rid = a.rid WHERE a.kind = 'group' AND a.principal = ? ORDER BY 1, 3",
                (gid,),
            )
            return [HeldPermission(r, d, Action(a), gid) for r, d, a in found]

        return await self._db.read(query)


def _require_parties(conn: Connection, ace: Ace) -> None:
    rows.require(conn, "acl", ace.rid)
    rows.require(conn, ace.kind.value, ace.principal)


def _key(ace: Ace) -> tuple[str, str, str, str]:
    return (ace.rid, ace.kind.value, ace.principal, ace.action.value)


def _who(ace: Ace) -> str:
    return f"{ace.kind.value.capitalize()} '{ace.principal}'"
