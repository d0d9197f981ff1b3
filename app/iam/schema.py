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

MIGRATIONS.append(
    # 2: the signing key ring in the database (used on PostgreSQL, where replicas share it;
    # SQLite keeps its keys in files, key_ring.py). Private keys are sealed (sealing.py).
    [
        """CREATE TABLE signing_keys (
            kid TEXT PRIMARY KEY,
            private_key TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            retired_at DOUBLE PRECISION
        )""",
        """CREATE TABLE keyring (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            current_kid TEXT NOT NULL REFERENCES signing_keys (kid)
        )""",
    ]
)

MIGRATIONS.append(
    # 3: stream slots held by gateway replicas for the per-identity caps, as leases a replica
    # renews while it lives (app/gateway/leases.py; used on PostgreSQL).
    [
        """CREATE TABLE stream_leases (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            uid TEXT NOT NULL,
            replica TEXT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX stream_leases_by_uid ON stream_leases (kind, uid)",
        "CREATE INDEX stream_leases_by_replica ON stream_leases (replica)",
    ]
)

MIGRATIONS.append(
    # 4: failed-login token buckets shared by the replicas (app/iam/login_limits.py; used on
    # PostgreSQL). scope: 'uid' or 'address'.
    [
        """CREATE TABLE login_buckets (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            tokens DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (scope, key)
        )""",
        "CREATE INDEX login_buckets_by_age ON login_buckets (updated)",
    ]
)
