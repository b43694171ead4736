"""Logging of every Kuzet process, and the scrubber that keeps secrets and personal data out of every log line.

``install()`` runs once at the start of each ``kuzet`` command (serve, demo and every other one). From then on every
log record of the process — ``kuzet.*``, uvicorn and its access log, httpx, SQLAlchemy, asyncio, the root logger,
``warnings`` (captured into logging), and uncaught exceptions of any thread — is scrubbed when it is created, before
any handler sees it, whichever handlers exist now or are added later (uvicorn adds its own). Handlers present when
``configure()`` runs also carry ``ScrubFilter``, for records that are built without the record factory.

Redacted (replaced by ``***``):

- bearer and basic credentials (``Authorization: Bearer …``);
- values of ``token``, ``access_token``, ``password``, ``secret``, ``api_key`` … in query strings, forms, JSON, text;
- pushing cameras' keys in their URLs (``?key=…``, ``/push/<id>/<key>``) and the push relay's secret;
- ``user:password@`` in any URL (``rtsp://admin:pw@10.0.0.5/…``, ``postgresql://kuzet:pw@db/kuzet``);
- the session cookie (``kuzet_session=…``);
- argon2 password hashes (``$argon2id$…``, e.g. in SQL echo);
- Kazakhstan national ID numbers (IIN, 12 digits — every run of exactly 12 digits, valid check digit or not).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any

REDACTED = "***"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("debug", "info", "warning", "error")

_SECRET_KEYS = r"(?:[a-z0-9]+[_-])*(?:token|password|passwd|pwd|secret|api[_-]?key|apikey|credentials?)"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host → scheme://***@host (the last @ before the path: passwords may hold an "@")
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s'\"<>]+@"), r"\1" + REDACTED + "@"),
    # Authorization: Bearer … / Basic … (a credential-like word after the scheme, not prose like "bearer token")
    (re.compile(r"\b((?i:bearer)|Basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1\2" + REDACTED),
    # key=value, key: value, "key": "value" for secret-looking keys (query strings, forms, JSON, repr)
    (re.compile(r"(?i)(\b" + _SECRET_KEYS + r"\b[\"']?\s*[=:]\s*)"
                r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^&\s\"',;)}\]]+)"), r"\1" + REDACTED),
    # pushing cameras' keys: rtmp://…/push/7?key=… (and the relay's secret), rtsp://…/push/7/<key>
    (re.compile(r"(?i)([?&](?:key|relay)=)[^&\s\"',;)}\]]+"), r"\1" + REDACTED),
    (re.compile(r"(/push/\d+/)[A-Za-z0-9_%-]{8,}"), r"\1" + REDACTED),
    # the session cookie wherever it appears (Cookie / Set-Cookie headers)
    (re.compile(r"(?i)\b(kuzet_session=)[^;\s\"',]+"), r"\1" + REDACTED),
    # argon2 password hashes
    (re.compile(r"\$argon2(id|i|d)\$[A-Za-z0-9+/=$,.-]+"), r"$argon2\1$" + REDACTED),
    # national ID numbers (IIN): exactly 12 digits
    (re.compile(r"(?<!\d)\d{12}(?!\d)"), REDACTED),
]
_PLAIN = (int, float, bool, type(None))
_exception_formatter = logging.Formatter()
_installed = False
_install_lock = threading.Lock()


def scrub(text: str) -> str:
    """``text`` with every secret and national ID number replaced by ``***``. Idempotent."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _scrub_arg(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, _PLAIN):
        return value
    text = str(value)
    clean = scrub(text)
    return value if clean == text else clean


def scrub_record(record: logging.LogRecord) -> None:
    """Scrub a record in place: its message, its arguments, the message they make together, its traceback."""
    if not isinstance(record.msg, str):
        record.msg = str(record.msg)
    if not record.args:
        record.msg = scrub(record.msg)
    else:
        if isinstance(record.args, Mapping):
            record.args = {key: _scrub_arg(value) for key, value in record.args.items()}
        else:
            record.args = tuple(_scrub_arg(value) for value in record.args)
        # The format string is left whole (scrubbing it could eat its placeholders), but a secret can sit in it or be
        # split between it and an argument ("token=%s"): what they make together decides. Records whose message is
        # clean keep their arguments (uvicorn's access formatter reads them one by one).
        try:
            message = record.getMessage()
            clean = scrub(message)
        except Exception:  # noqa: BLE001 - a malformed record: its scrubbed parts, not a formatting error quoting it
            message, clean = "", scrub(f"{record.msg} {record.args!r}")
        if clean != message:
            record.msg, record.args = clean, ()
    if record.exc_info:
        # Rendered now, scrubbed, and the live exception dropped, so no handler renders it again unscrubbed.
        record.exc_text = scrub(_exception_formatter.formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


class ScrubFilter(logging.Filter):
    """The scrubber as a filter, for handlers (records built without the factory, e.g. ``makeLogRecord``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def _log_uncaught(kind: str, exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    logging.getLogger("kuzet").critical("uncaught exception%s", kind, exc_info=(exc_type, exc, tb))


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    _log_uncaught("", exc_type, exc, tb)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread else "?"
    _log_uncaught(f" in thread {name}", args.exc_type, args.exc_value, args.exc_traceback)


def _unraisablehook(unraisable: Any) -> None:
    if unraisable.exc_type is None or unraisable.exc_value is None:
        return
    logging.getLogger("kuzet").warning("%s: %r", unraisable.err_msg or "exception ignored", unraisable.object,
                                       exc_info=(unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback))


def install() -> None:
    """Scrub every log record of this process from now on (idempotent). Warnings and uncaught exceptions of any
    thread go through logging, and so through the scrubber, instead of straight to stderr."""
    global _installed
    with _install_lock:
        if _installed:
            return
        base_factory = logging.getLogRecordFactory()

        def scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = base_factory(*args, **kwargs)
            scrub_record(record)
            return record

        logging.setLogRecordFactory(scrubbing_factory)
        logging.captureWarnings(True)
        sys.excepthook = _excepthook
        threading.excepthook = _thread_excepthook
        sys.unraisablehook = _unraisablehook
        _installed = True


def configure(level: str = "info") -> None:
    """Logging of a long-running process (``serve``, ``demo``): one line per record on stderr at ``level``."""
    install()
    numeric = getattr(logging, level.upper())
    logging.basicConfig(level=numeric, format=FORMAT)
    logging.getLogger().setLevel(numeric)
    if numeric > logging.DEBUG:
        # httpx logs every request URL at INFO (webhook URLs); scrubbed, but noise: warnings only.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    else:
        # SQLAlchemy keeps its loggers at WARNING unless told otherwise: debug means its statements and rows too.
        logging.getLogger("sqlalchemy").setLevel(logging.DEBUG)
    guard_handlers()


def guard_handlers() -> None:
    """Put ``ScrubFilter`` on every handler of every logger configured so far (call again after a library, e.g.
    uvicorn, configured its own)."""
    loggers = [logging.getLogger()] + [logger for logger in logging.Logger.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, ScrubFilter) for f in handler.filters):
                handler.addFilter(ScrubFilter())
