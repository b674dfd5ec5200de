"""Storage URLs made safe to print: passwords and secret query parameters hidden.

Every message, log record, table or report that shows a storage URL goes through
:func:`mask_url`; text that may echo a URL (a driver's error message) goes through
:func:`mask_secrets`. SQLAlchemy parses the URL; strings it cannot parse, or parses
ambiguously (an unescaped ``@`` in a password), are masked conservatively: everything
between the scheme and the last ``@`` is hidden.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, quote_plus

import sqlalchemy.exc
from sqlalchemy.engine import URL, make_url

MASK = "***"
SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|auth|credential|sig", re.IGNORECASE)
"""Query parameter names whose values are hidden (``password=``, ``api_key=``, ...)."""

_QUERY_SECRET = re.compile(r"(?P<name>[?&;][^=&;#]*)=(?P<value>[^&;#]*)")
_SHORT = 4  # secrets shorter than this are masked only as whole words in free text


def _parse(url: str) -> URL | None:
    """SQLAlchemy's parse of ``url``, or ``None`` when it fails or is ambiguous."""
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError, TypeError):
        return None
    if parsed.host is not None and "@" in parsed.host:
        return None  # an unescaped "@" in the password: SQLAlchemy split it wrongly
    return parsed


def _mask_query(text: str) -> str:
    def hide(match: re.Match[str]) -> str:
        if SECRET_NAME.search(match["name"]):
            return f"{match['name']}={MASK}"
        return match.group(0)

    return _QUERY_SECRET.sub(hide, text)


def _conservative(url: str) -> str:
    """Hide everything between the scheme and the last ``@`` (and secret query values)."""
    head, sep, tail = url.partition("?")
    masked = head
    if "@" in head:
        scheme, colon, rest = head.partition(":")
        if not colon:
            masked = MASK + head[head.rindex("@") :]
        else:
            slashes = rest[: len(rest) - len(rest.lstrip("/"))]
            masked = f"{scheme}:{slashes}{MASK}{rest[rest.rindex('@') :]}"
    return masked + (_mask_query(sep + tail) if sep else "")


def mask_url(url: Any) -> str:
    """The storage URL with its password and secret query parameters replaced by ``***``.

    Example:

    >>> from tunefleet.urls import mask_url
    >>> mask_url("postgresql://bob:secret@db:5432/tune")
    'postgresql://bob:***@db:5432/tune'
    >>> mask_url("postgresql://bob@db/tune?password=secret&sslmode=require")
    'postgresql://bob@db/tune?password=***&sslmode=require'
    >>> mask_url("postgresql://bob:p@ss@db/tune")
    'postgresql://***@db/tune'
    """
    text = str(url)
    parsed = _parse(text)
    if parsed is None:
        return _conservative(text)
    query = {
        name: (MASK if SECRET_NAME.search(name) else value) for name, value in parsed.query.items()
    }
    rendered = parsed.set(query=query).render_as_string(hide_password=True)
    return rendered.replace(quote_plus(MASK), MASK)


def _secrets(url: str) -> set[str]:
    """The strings of ``url`` that must never be printed (raw and percent-encoded)."""
    found: set[str] = set()
    parsed = _parse(url)
    if parsed is not None:
        if parsed.password:
            found.add(str(parsed.password))
        for name, value in parsed.query.items():
            if SECRET_NAME.search(name):
                found.update([value] if isinstance(value, str) else value)
    else:
        head = url.partition("?")[0]
        if "@" in head:
            userinfo = head[: head.rindex("@")].partition(":")[2].lstrip("/")
            password = userinfo.partition(":")[2] or userinfo
            found.update([userinfo, password, *password.split("@")])
    for match in _QUERY_SECRET.finditer(url):
        if SECRET_NAME.search(match["name"]):
            found.add(match["value"])
    found.discard("")
    return found | {quote(s, safe="") for s in found} | {quote_plus(s) for s in found}


def mask_secrets(text: str, url: Any) -> str:
    """``text`` (an error message, say) with ``url`` and each of its secrets masked.

    Use on any text that may echo the URL, such as a database driver's error message.

    Example:

    >>> from tunefleet.urls import mask_secrets
    >>> mask_secrets("cannot reach postgresql://bob:hunter2@db/t (password hunter2)",
    ...              "postgresql://bob:hunter2@db/t")
    'cannot reach postgresql://bob:***@db/t (password ***)'
    """
    url = str(url)
    text = text.replace(url, mask_url(url))
    for secret in sorted(_secrets(url), key=len, reverse=True):
        if len(secret) >= _SHORT:
            text = text.replace(secret, MASK)
        else:
            text = re.sub(rf"(?<![\w]){re.escape(secret)}(?![\w])", MASK, text)
    return text
