"""Keeping credentials out of logs and run reports.

Three kinds of secret are masked with `***`:

- the password of a URL (`postgresql://u:secret@h/db` -> `postgresql://u:***@h/db`);
- the value of a key or variable whose name says it holds a secret (`api_key`,
  `token`, `password`, `DATABASE_PASSWORD`, `OPENAI_API_KEY`, `*_SECRET`), both as
  a mapping key and as `name=value` inside text;
- the literal value of any such variable in the process environment, wherever
  it shows up (an error message quoting a request header, say).

`redact_event` is a structlog processor for the application's chain (the CLI's);
`redact_text` and `redact_data` clean what is written to reports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

MASK = "***"

# Shorter environment values are too likely to occur by chance in ordinary text
# (`true`, a port number) to be replaced everywhere.
MIN_SECRET_LENGTH = 8

_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_key",
        "access_token",
        "refresh_token",
        "auth_token",
        "authorization",
        "credentials",
        "private_key",
        "client_secret",
    }
)
_SECRET_SUFFIXES = ("_key", "_secret", "_token", "_password", "_passwd", "_pwd")
# names that end like a secret but hold structure, not credentials (and the
# shell's PWD, the working folder, is not a password either: no bare "pwd")
_NOT_SECRETS = frozenset(
    {"primary_key", "foreign_key", "sort_key", "partition_key", "cache_key"}
)

_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s'\"]*:)"
    r"(?P<password>[^\s'\"]+)"
    r"(?=@[^@\s'\"/?#]*(?:[/?#\s'\",;)\]}]|$))"
)
_NAMED_VALUE = re.compile(
    r"(?P<head>\b(?P<name>[A-Za-z][A-Za-z0-9_\-]*)\s*[=:]\s*['\"]?)"
    r"(?P<value>[^\s&'\",;)\]}]+)"
)
_BEARER = re.compile(
    r"(?P<head>\b(?:Bearer|Basic|Token)\s+)(?P<value>[A-Za-z0-9._~+/\-]{8,}=*)"
)


def is_secret_name(name: str) -> bool:
    """Whether a key or variable name says its value is a credential."""
    key = name.strip().lower().replace("-", "_")
    if key in _NOT_SECRETS:
        return False
    return key in _SECRET_WORDS or key.endswith(_SECRET_SUFFIXES)


def environment_secrets(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Values of secret-named variables, and URL passwords, in the environment."""
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if is_secret_name(name):
            found.add(value)
        found.update(m.group("password") for m in _URL_PASSWORD.finditer(value))
    return frozenset(v for v in found if len(v) >= MIN_SECRET_LENGTH)


def redact_text(text: str, *, secrets: Iterable[str] | None = None) -> str:
    """Mask URL passwords, `name=value` secrets and known secret values in text.

    Args:
        text: any text, e.g. a log message or an error quoted in a report.
        secrets: literal values to mask; the environment's secrets by default.

    Returns:
        The text with every secret replaced by `***`.
    """
    known = environment_secrets() if secrets is None else secrets
    for value in sorted(known, key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)

    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    text = _BEARER.sub(lambda m: m.group("head") + MASK, text)
    return _NAMED_VALUE.sub(_mask_named_value, text)


def redact_data(value: Any, *, secrets: Iterable[str] | None = None) -> Any:
    """A copy of JSON-like data with every secret masked.

    Strings are cleaned with `redact_text`; in a mapping, a string under a
    secret-named key is masked whole. Numbers and booleans are kept: a count
    of tokens is not a token.
    """
    known = environment_secrets() if secrets is None else frozenset(secrets)
    return _redact(value, known)


def redact_event(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every value of a log event.

    Put it after `format_exc_info` (so tracebacks are cleaned too) and before
    the renderer.
    """
    known = environment_secrets()
    for key in list(event_dict):
        event_dict[key] = _redact_field(key, event_dict[key], known)
    return event_dict


def _redact(value: Any, known: frozenset[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets=known)
    if isinstance(value, Mapping):
        return {k: _redact_field(str(k), v, known) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(_redact(v, known) for v in value)
    return value


def _redact_field(key: str, value: Any, known: frozenset[str]) -> Any:
    if is_secret_name(key) and isinstance(value, str | bytes) and value:
        return MASK
    if isinstance(value, str | Mapping | list | tuple | set | frozenset):
        return _redact(value, known)
    if isinstance(value, bool | int | float | type(None)):
        return value
    # paths, exceptions, dataclasses: their text is what a renderer would show
    text = str(value)
    cleaned = redact_text(text, secrets=known)
    return value if cleaned == text else cleaned


def _mask_named_value(match: re.Match[str]) -> str:
    if not is_secret_name(match.group("name")) or match.group("value") == MASK:
        return match.group(0)
    return match.group("head") + MASK
