"""JSON-lines logging: one object per line, with the request id and user id of the request in hand.

Each process of the platform (the CLI, the API server, the store actor) writes its own rotating file
under ``<data dir>/logs``, so that no two processes rotate the same file.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
import sys
import time
from typing import Any

from cvplatform.config import LogLevel, Settings

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
user_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("user_id", default=None)

LEVELS: dict[LogLevel, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
}
_LEVEL_NAMES = {logging.WARNING: "WARN", logging.CRITICAL: "FATAL"}
# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
            "user_id": user_id_var.get(),
        }
        # Fields passed with `extra=` win over the context's (a request's final log line names
        # its user after the context has been reset).
        line.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRS and not key.startswith("_ray")
        )
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(
    settings: Settings, process_name: str, stderr_level: LogLevel | None = None
) -> None:
    """Send the root logger to ``<data dir>/logs/<process_name>.log`` (rotating) and to stderr.

    ``stderr_level`` raises the bar for stderr only (the CLI keeps its console for people).
    """
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    file_handler = logging.handlers.RotatingFileHandler(
        settings.log_dir / f"{process_name}.log",
        maxBytes=settings.log_max_bytes,
        backupCount=settings.log_backups,
        encoding="utf-8",
    )
    stderr_handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "cvp":
            root.removeHandler(handler)
    for handler in (file_handler, stderr_handler):
        handler.setFormatter(formatter)
        handler.set_name("cvp")
        root.addHandler(handler)
    if stderr_level is not None:
        stderr_handler.setLevel(LEVELS[stderr_level])
    root.setLevel(LEVELS[settings.log_level])
