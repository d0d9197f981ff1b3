"""The IAM store's schema, one list of statements per version (append only, never edit)."""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    # 1: users (people and service accounts), groups, memberships, ACLs and their entries.
    [
        """CREATE TABLE users (
            uid TEXT PRIMARY KEY,
            description TEXT NOT NULL,
            password_hash TEXT,
            public_key TEXT,
            CHECK (password_hash IS NULL OR public_key IS NULL)
        )""",
        """CREATE TABLE groups (
            gid TEXT PRIMARY KEY,
            description TEXT NOT NULL
        )""",
        """CREATE TABLE memberships (
            gid TEXT NOT NULL REFERENCES groups (gid) ON DELETE CASCADE,
            uid TEXT NOT NULL REFERENCES users (uid) ON DELETE CASCADE,
            PRIMARY KEY (gid, uid)
        )""",
        "CREATE INDEX memberships_by_uid ON memberships (uid)",
        """CREATE TABLE acls (
            rid TEXT PRIMARY KEY,
            description TEXT NOT NULL
        )""",
        # One row per ACE. Principals of either kind live in one table as the model has it;
        # deleting a user or group deletes its ACEs in the same transaction (store.py).
        """CREATE TABLE aces (
            rid TEXT NOT NULL REFERENCES acls (rid) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),
            principal TEXT NOT NULL,
            action TEXT NOT NULL
                CHECK (action IN ('create', 'read', 'update', 'delete', 'full')),
            PRIMARY KEY (rid, kind, principal, action)
        )""",
        "CREATE INDEX aces_by_principal ON aces (kind, principal)",
    ],
]
