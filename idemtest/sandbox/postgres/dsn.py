"""PostgreSQL DSNs: parsing (libpq's own parser), building URLs, and redacting passwords."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote as _urlquote
from urllib.parse import urlencode

from ..._extras import require

# user:password@ in a URL; the password may hold an unencoded '@' or ':', so the
# match runs to the last '@' of the URL (a host never contains one)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s'\"]*:)[^\s'\"]*@", re.I)
# password=... in key=value DSNs and URL query strings: quoted (with spaces and
# escaped quotes) or bare up to a space, '&' or the end
_KV_PASSWORD = re.compile(r"""((?:\bPG|\b|_)password\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&'"]+)""", re.I)


def redact(dsn: str) -> str:
    """Any text with the passwords of the DSNs in it replaced, fit to print:
    URLs (`postgresql://u:pw@h/db`, an unencoded '@' in pw too), key=value DSNs
    (`password=pw`, `password='p w'`), `?password=` query strings, PGPASSWORD=."""
    text = _URL_PASSWORD.sub(r"\1***@", str(dsn))
    return _KV_PASSWORD.sub(r"\1***", text)


def without_password(dsn: str) -> str:
    """The DSN with its password removed (not masked), so a printed command still
    runs: libpq then takes the password from PGPASSWORD or ~/.pgpass."""
    text = re.sub(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s'\"]*):[^\s'\"]*@", r"\1@", str(dsn), flags=re.I)
    text = re.sub(r"""[?&]password=[^&\s]*""", lambda m: "?" if m.group(0).startswith("?") else "", text, flags=re.I)
    text = text.replace("?&", "?").rstrip("?")
    return re.sub(r"""\s*\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)""", "", text, flags=re.I).strip()


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
