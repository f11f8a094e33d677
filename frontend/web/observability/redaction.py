"""Secret redaction of log lines: one set of rules for both services.

The backend (`api/observability/redaction.py`) and the frontend
(`web/observability/redaction.py`) each ship this file; the copies are identical and
`tests/test_shared_files.py` says so. Each service is deployed alone from its folder, so
they share the file, not an import.

Rules (docs/observability.md, "Logs"):

- a field whose (lower-cased) name contains one of `SENSITIVE_NAME_PARTS` has its value
  replaced by `[REDACTED]`, at the top level and inside nested mappings and header lists
  (Authorization, Cookie, Set-Cookie, X-CSRFToken, *password*, *token*, *api_key*, ...);
- in free text (any string value: the event, a User-Agent, an exception message, ...)
  `Bearer <x>`, `Basic <x>` and `<secret-name>=<x>` / `<secret-name>: <x>` have `<x>`
  replaced, so a credential pasted into a header or a message never reaches the logs.
  Prose such as "a bearer token" is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"
SENSITIVE_NAME_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "csrf",
    "authorization",
    "cookie",
    "api_key",
    "api-key",
    "apikey",
)
# Credentials embedded in free text: "Bearer abc", "Basic abc", "?token=abc", "password: abc",
# "BACKEND_API_KEY=abc". After "bearer"/"basic", the words of prose ("a bearer token is
# required") are not credentials.
_SECRET_IN_TEXT = re.compile(
    r"(?i)(\b(?:bearer|basic)\s+(?!(?:tokens?|auth|authentication|credentials?|scheme)\b)"
    r"|\b[\w.-]*(?:password|passwd|secret|token|csrf|api[_-]?key)[\w.-]*[=:]\s*)"
    r"[^\s&,;\"']+"
)


@lru_cache(maxsize=1024)  # field names repeat on every line; bounded, as names may vary
def is_sensitive(name: str) -> bool:
    """True when a field called `name` holds a secret (see `SENSITIVE_NAME_PARTS`)."""
    lowered = name.lower()
    return any(part in lowered for part in SENSITIVE_NAME_PARTS)


_SCALARS = frozenset({int, float, bool, type(None)})


def scrub_text(value: str) -> str:
    """`value` with credentials inside the text replaced by `[REDACTED]`."""
    # Every match contains one of these words (any case): an ASCII text without any of them
    # cannot match, which these substring tests (spelled out: a generator costs 3x more) tell
    # ~30x faster than the regex (docs/performance.md). Non-ASCII: run the regex.
    if value.isascii():
        lowered = value.lower()
        if not (
            "bearer" in lowered
            or "basic" in lowered
            or "passw" in lowered  # password, passwd
            or "secret" in lowered
            or "token" in lowered
            or "csrf" in lowered
            or "key" in lowered  # api_key, api-key, apikey
        ):
            return value
    return _SECRET_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, value)


def scrub(value: Any, depth: int = 0) -> Any:
    """Redact secret-named keys in nested mappings/lists and credentials inside strings."""
    kind = type(value)
    if kind is str:
        return scrub_text(value)
    if kind in _SCALARS or depth > 5:  # log values are shallow; bound the work on odd inputs
        return value
    if isinstance(value, str):  # a str subclass
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_sensitive(k) else scrub(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        # Header lists arrive as [(name, value), ...] pairs.
        if all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in value):
            return [(k, REDACTED if is_sensitive(k) else scrub(v, depth + 1)) for k, v in value]
        return [scrub(v, depth + 1) for v in value]
    return value


def redact(_logger: Any, _name: str, event_dict: Any) -> Any:
    """structlog processor: apply the rules above to every field of the event. Never raises."""
    # Only values of existing keys are replaced, so iterating the dict itself is safe.
    for key, value in event_dict.items():
        if key.startswith("_"):  # structlog's own plumbing (_record, _from_structlog)
            continue
        if is_sensitive(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = scrub(value)
    return event_dict
