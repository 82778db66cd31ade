"""Splitting a PostgreSQL script into statements, as the server would see them.

Used by the instrumented cursors (a script inside a transaction is several
statements a crash can fall between) and by the sandbox (`split_script`).
"""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.S).strip()


def split_sql(sql: str) -> list[str]:
    """Split a PostgreSQL script on top-level semicolons, respecting quotes,
    E'' strings, dollar quoting and comments. Comment-only pieces are dropped."""
    out: list[str] = []
    i, n, start = 0, len(sql), 0

    def ident_char(k: int) -> bool:
        return k >= 0 and (sql[k].isalnum() or sql[k] in "_$")

    while i < n:
        c = sql[i]
        if c == "'" or c == '"':
            backslashes = c == "'" and i > 0 and sql[i - 1] in "eE" and not ident_char(i - 2)
            j = i + 1
            while j < n:
                if backslashes and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            continue
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and sql.startswith("/*", i):
            depth, j = 1, i + 2  # PostgreSQL block comments nest
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            i = j
            continue
        if c == "$" and not ident_char(i - 1):
            m = _DOLLAR_TAG.match(sql, i)
            if m:
                end = sql.find(m.group(0), m.end())
                i = n if end < 0 else end + len(m.group(0))
                continue
        if c == ";":
            piece = sql[start:i].strip()
            if _strip_comments(piece):
                out.append(piece)
            start = i + 1
        i += 1
    piece = sql[start:].strip()
    if _strip_comments(piece):
        out.append(piece)
    return out
