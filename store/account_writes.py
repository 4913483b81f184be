"""Writes for accounts: users, API keys, login sessions and failed logins."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import sqlite_utils

from cvplatform.clock import from_iso, to_iso
from cvplatform.errors import DuplicateRecord, LastAdminError, LoginLocked, RecordNotFound
from store import queries
from store.records import Row, UserRecord
from store.writer_base import WriterBase


def _locked(locked_until: str, now: str) -> LoginLocked:
    wait_s = max(1, int((from_iso(locked_until) - from_iso(now)).total_seconds()) + 1)
    return LoginLocked(f"too many failed logins; try again after {locked_until}", wait_s)


class AccountWrites(WriterBase):
    OPERATIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "create_user",
            "ensure_first_admin",
            "delete_user",
            "set_role",
            "create_api_key",
            "revoke_api_key",
            "touch_api_key",
            "create_session",
            "revoke_session",
            "reserve_login_attempt",
            "record_login_failure",
            "clear_login_failures",
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

    # --- API keys ------------------------------------------------------------------------

    def create_api_key(self, user_id: int, name: str, prefix: str, key_hash: str) -> Row:
        self._user(user_id)
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [user_id, name, prefix, key_hash, self._now()],
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

    # --- sessions and logins ---------------------------------------------------------------

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

    def reserve_login_attempt(
        self, username: str, now: str, max_failures: int, lockout_s: float
    ) -> Row:
        """Count a login attempt before its password is checked; refuse it if the name is locked.

        Counting first means a burst of parallel guesses gets at most ``max_failures`` password
        checks per lockout, not one per request. A success clears the count
        (:meth:`clear_login_failures`); a failure may lock the name (:meth:`record_login_failure`).

        Raises:
            LoginLocked: the name is locked, or ``max_failures`` attempts are already counted.
        """
        with self._transaction() as db:
            self._forget_old_failures(db, now, lockout_s)
            row = db.execute(
                "SELECT failures, locked_until FROM login_failures WHERE username = ?",
                [username],
            ).fetchone()
            if row is not None and row[1] is not None and row[1] > now:
                raise _locked(row[1], now)
            lock_over = row is not None and row[1] is not None
            attempts = 1 if row is None or lock_over else row[0] + 1
            if attempts > max_failures:
                raise LoginLocked("too many login attempts at once; try again shortly", 1)
            db.execute(
                "INSERT INTO login_failures (username, failures, last_failed_at, locked_until)"
                " VALUES (?, ?, ?, NULL) ON CONFLICT(username) DO UPDATE SET"
                " failures = excluded.failures, last_failed_at = excluded.last_failed_at,"
                " locked_until = NULL",
                [username, attempts, now],
            )
        return {"failures": attempts, "locked_until": None}

    def record_login_failure(
        self, username: str, now: str, max_failures: int, lockout_s: float
    ) -> Row:
        """The reserved attempt failed: at ``max_failures`` counted, lock the name for a while.

        Returns the name's state: ``failures`` and ``locked_until`` (None when not locked).
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT failures FROM login_failures WHERE username = ?", [username]
            ).fetchone()
            failures = 1 if row is None else int(row[0])
            locked_until = None
            if failures >= max_failures:
                locked_until = to_iso(from_iso(now) + timedelta(seconds=lockout_s))
            db.execute(
                "INSERT INTO login_failures (username, failures, last_failed_at, locked_until)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET"
                " last_failed_at = excluded.last_failed_at, locked_until = excluded.locked_until",
                [username, failures, now, locked_until],
            )
        return {"failures": failures, "locked_until": locked_until}

    @staticmethod
    def _forget_old_failures(db: sqlite_utils.Database, now: str, lockout_s: float) -> None:
        # Guesses at made-up names would otherwise grow this table without end.
        horizon = to_iso(from_iso(now) - timedelta(seconds=lockout_s))
        db.execute(
            "DELETE FROM login_failures WHERE last_failed_at < ?"
            " AND (locked_until IS NULL OR locked_until <= ?)",
            [horizon, now],
        )

    def clear_login_failures(self, username: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM login_failures WHERE username = ?", [username])
