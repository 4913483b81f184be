"""Writes for accounts: users, API keys and login sessions.

Failed logins are not written: the API throttles them in memory (``serve_apps.auth.throttle``);
the ``login_failures`` table of schema 1 is no longer used.
"""

from __future__ import annotations

from typing import ClassVar

import sqlite_utils

from cvplatform.errors import DuplicateRecord, LastAdminError, RecordNotFound
from store import queries
from store.records import Row, UserRecord
from store.writer_base import WriterBase


class AccountWrites(WriterBase):
    OPERATIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "create_user",
            "ensure_first_admin",
            "delete_user",
            "set_role",
            "set_password",
            "create_api_key",
            "revoke_api_key",
            "touch_api_key",
            "create_session",
            "revoke_session",
        }
    )

    def _user(self, user_id: int) -> UserRecord:
        return queries.required(queries.user_by_id, self._db, user_id, "user")

    # --- users ---------------------------------------------------------------------------

    def create_user(
        self, username: str, password_hash: str, role: str, created_by: int | None = None
    ) -> UserRecord:
        now = self._now()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
                raise DuplicateRecord(f"a user named {username!r} already exists")
            cursor = db.execute(
                "INSERT INTO users (username, password_hash, role, created_at, created_by,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [username, password_hash, role, now, created_by, now],
            )
            user_id = int(cursor.lastrowid or 0)
        return self._user(user_id)

    def ensure_first_admin(self, password_hash: str) -> bool:
        """Create the user ``admin`` if there is no user at all; returns whether it did."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return False
            now = self._now()
            db.execute(
                "INSERT INTO users (username, password_hash, role, created_at, updated_at)"
                " VALUES ('admin', ?, 'admin', ?, ?)",
                [password_hash, now, now],
            )
        return True

    def _refuse_losing_last_admin(
        self, db: sqlite_utils.Database, user: UserRecord, verb: str
    ) -> None:
        if user.role != "admin":
            return
        admins = db.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0]
        if admins <= 1:
            raise LastAdminError(
                f"cannot {verb} {user.username!r}: it is the last admin; "
                "make another user admin first"
            )

    def delete_user(self, user_id: int) -> UserRecord:
        """Delete a user with their sessions and API keys (the audit log keeps their name)."""
        user = self._user(user_id)
        with self._transaction() as db:
            self._refuse_losing_last_admin(db, user, "delete")
            db.execute("DELETE FROM users WHERE id = ?", [user_id])
        return user

    def set_role(self, user_id: int, role: str) -> UserRecord:
        user = self._user(user_id)
        with self._transaction() as db:
            if role != "admin":
                self._refuse_losing_last_admin(db, user, "demote")
            db.execute(
                "UPDATE users SET role = ?, updated_at = ? WHERE id = ?",
                [role, self._now(), user_id],
            )
        return self._user(user_id)

    def set_password(self, user_id: int, password_hash: str) -> Row:
        """Replace a user's password and revoke all their login sessions, in one transaction.

        Their API keys stay: each is a credential of its own, revoked one by one.
        Returns the user's ``username`` and how many sessions were revoked
        (``sessions_revoked``).
        """
        user = self._user(user_id)
        now = self._now()
        with self._transaction() as db:
            db.execute(
                "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
                [password_hash, now, user_id],
            )
            # Sessions already past their time are refused anyway and not counted.
            revoked = db.execute(
                "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
                " AND expires_at > ?",
                [now, user_id, now],
            ).rowcount
        return {"user_id": user_id, "username": user.username, "sessions_revoked": revoked}

    # --- API keys ------------------------------------------------------------------------

    def create_api_key(
        self, user_id: int, name: str, prefix: str, key_hash: str, expires_at: str | None = None
    ) -> Row:
        """Record a new key of the user's; ``expires_at`` (ISO-8601 UTC) None: it never expires."""
        self._user(user_id)
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [user_id, name, prefix, key_hash, self._now(), expires_at],
            )
            key_id = cursor.lastrowid
        return self._api_key(int(key_id or 0))

    def _api_key(self, key_id: int) -> Row:
        key = queries.api_key_by_id(self._db, key_id)
        if key is None:
            raise RecordNotFound(f"no API key with id {key_id}")
        return key

    def revoke_api_key(self, user_id: int, key_id: int) -> Row:
        """Revoke one of the user's own keys; someone else's key is reported as not found."""
        key = self._api_key(key_id)
        if key["user_id"] != user_id:
            raise RecordNotFound(f"no API key with id {key_id}")
        if key["revoked_at"] is None:
            with self._transaction() as db:
                db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", [self._now(), key_id])
        return self._api_key(key_id)

    def touch_api_key(self, key_id: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [self._now(), key_id])

    # --- sessions -----------------------------------------------------------------------

    def create_session(self, session_id: str, user_id: int, expires_at: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                [session_id, user_id, self._now(), expires_at],
            )

    def revoke_session(self, session_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [self._now(), session_id],
            )
