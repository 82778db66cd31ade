"""PostgreSQL DSNs: parsing (libpq's own parser), building URLs, and redacting passwords."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote as _urlquote
from urllib.parse import urlencode

from ..._extras import require


def redact(dsn: str) -> str:
    """A DSN with its password replaced, fit to print."""
    dsn = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", dsn, flags=re.I)


def _conninfo() -> Any:
    return require("psycopg", "postgres").conninfo


def parse_dsn(dsn: str = "", **kwargs: Any) -> dict[str, str]:
    """libpq parameters of a URL or key=value DSN (plus keyword overrides)."""
    if "database" in kwargs and "dbname" not in kwargs:  # psycopg2 spelling
        kwargs["dbname"] = kwargs.pop("database")
    params = {k: v for k, v in kwargs.items() if v is not None}
    return {k: str(v) for k, v in _conninfo().conninfo_to_dict(dsn or "", **params).items()}


def make_url(params: dict[str, str], scheme: str = "postgresql") -> str:
    """A libpq / SQLAlchemy URL from libpq parameters (password included)."""
    p = dict(params)
    user, password = p.pop("user", ""), p.pop("password", "")
    host, port, dbname = p.pop("host", ""), p.pop("port", ""), p.pop("dbname", "")
    auth = ""
    if user:
        auth = _urlquote(user, safe="") + (":" + _urlquote(password, safe="") if password else "") + "@"
    netloc = ""
    if host and not host.startswith("/") and "," not in host:
        netloc = f"[{host}]" if ":" in host else host
        if port:
            netloc += f":{port}"
    else:
        if host:
            p["host"] = host
        if port:
            p["port"] = port
    q = ("?" + urlencode(p)) if p else ""
    return f"{scheme}://{auth}{netloc}/{_urlquote(dbname, safe='')}{q}"


def _host_key(host: str | None) -> str:
    h = (host or "").strip().lower()
    if not h or h.startswith("/") or h in ("localhost", "127.0.0.1", "::1"):
        return "local"
    return h


def _scrub(text: str, secret: str | None) -> str:
    text = redact(text)
    return text.replace(secret, "***") if secret else text
