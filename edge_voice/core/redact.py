"""Secrets out of logs and events: ``redact_url`` masks the credentials a URL may carry.

``http://user:pass@host/v1`` → ``http://***@host/v1``; a query parameter that names a secret
(``?api_key=…``, ``token``, ``key``, ``password``, ``access_token``) keeps its name and loses its value.
It works on any text, so a message that quotes a URL (an exception, a fallback reason) is cleaned too.
"""

from __future__ import annotations

import re
import urllib.parse

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]*@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access[_-]?token|password|secret)=)[^&#\s]*")
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def redact_url(text: str) -> str:
    """``text`` (a URL, or any message quoting URLs) with userinfo and secret query values masked."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


def plain_http_to_remote(url: str) -> bool:
    """True when ``url`` is ``http://`` to a host that is not this machine: what travels is readable on
    the network."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "http" and not (host in LOOPBACK or host.startswith("127."))
