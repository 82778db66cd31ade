"""Turn templated SQL (Jinja / dbt, Python placeholders) into text a SQL parser accepts.

Every replacement keeps the newlines of what it replaces, so line numbers reported on the
rendered text are line numbers in the original file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TAG = re.compile(r"\{#.*?#\}|\{%-?(.*?)-?%\}|\{\{-?(.*?)-?\}\}", re.S)
_REF = re.compile(r"""^ref\(\s*(?:['"][^'"]*['"]\s*,\s*)?['"]([^'"]+)['"]""")
_SOURCE = re.compile(r"""^source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]""")
_CONFIG = re.compile(r"^config\((.*)\)$", re.S)
_KWARG = re.compile(r"""(\w+)\s*=\s*(?:['"]([^'"]*)['"]|\[([^\]]*)\]|(\w+))""")
# config({"materialized": "incremental", ...}): the dict form of the same arguments
_DICT_ITEM = re.compile(r"""['"](\w+)['"]\s*:\s*(?:['"]([^'"]*)['"]|\[([^\]]*)\]|(\w+))""")
_INCREMENTAL_IF = re.compile(r"^if\s+(not\s+)?is_incremental\(\)\s*$")
_BLOCK_OPEN = {"if", "for", "macro", "call", "filter", "raw", "set_block"}
_DROP_BLOCKS = {"macro", "call", "filter", "set_block"}


_RESERVED = frozenset(
    ["all", "and", "as", "asc", "by", "case", "check", "column", "create", "current_date", "date", "default", "delete", "desc", "distinct", "drop", "else", "end", "from", "grant", "group", "having", "in", "index", "insert", "interval", "into", "is", "join", "key", "limit", "not", "null", "offset", "on", "or", "order", "partition", "primary", "range", "references", "rows", "schema", "select", "set", "table", "then", "time", "timestamp", "to", "union", "update", "user", "using", "values", "view", "when", "where", "with"]
)


def ident(text: str) -> str:
    """A placeholder expression as a SQL identifier (`{self.table}` -> `self_table`)."""
    name = re.sub(r"\W+", "_", text).strip("_").lower() or "idm_ph"
    if name[0].isdigit():
        name = f"x_{name}"
    # A bare `{table}` must not turn into the keyword TABLE.
    return f"{name}_ref" if name in _RESERVED else name


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


@dataclass
class Rendered:
    text: str
    # dbt `config(...)` arguments and the line of the config call.
    config: dict[str, str] = field(default_factory=dict)
    config_line: int | None = None
    # the line of each config argument (`materialized=` on its own line is the one to fix)
    config_lines: dict[str, int] = field(default_factory=dict)
    has_jinja: bool = False


def render_jinja(text: str, this_name: str = "this_model",
                 incremental: bool = False) -> Rendered:
    """Strip/render Jinja: keep the first branch of each if, drop macros, render ref/source.

    With `incremental`, an `if is_incremental()` / `if not is_incremental()` keeps the branch
    a dbt incremental run takes (is_incremental() true) instead of the first one."""
    out: list[str] = []
    pos = 0
    # Stack of (block kind, dropping?) so else-branches and macro bodies are removed.
    stack: list[tuple[str, bool]] = []
    result = Rendered(text="", has_jinja=False)

    def dropping() -> bool:
        return any(d for _, d in stack)

    for m in _TAG.finditer(text):
        result.has_jinja = True
        chunk = text[pos:m.start()]
        out.append(_blank(chunk) if dropping() else chunk)
        pos = m.end()
        raw = m.group(0)
        if m.group(1) is not None:
            words = m.group(1).strip().split()
            kw = words[0] if words else ""
            if kw == "set" and "=" not in m.group(1):
                kw = "set_block"
            inc = _INCREMENTAL_IF.match(m.group(1).strip()) if incremental else None
            if inc is not None:
                # "if_inc": drop the else; "if_full": keep only the else
                stack.append(("if_inc", False) if not inc.group(1) else ("if_full", True))
            elif kw in _BLOCK_OPEN:
                # Loop bodies are kept once, so separators like `if not loop.last` go.
                stack.append((kw, kw in _DROP_BLOCKS or (kw == "if" and "loop." in m.group(1))))
            elif kw in {"elif", "else"} and stack and stack[-1][0] == "if_full":
                stack[-1] = ("if_full_else", kw == "elif")
            elif kw in {"elif", "else"} and stack:
                stack[-1] = (stack[-1][0], True)
            elif kw.startswith("end") and stack:
                stack.pop()
            out.append(_blank(raw))
        elif m.group(2) is not None:
            expr = m.group(2).strip()
            if dropping():
                out.append(_blank(raw))
                continue
            cfg = _CONFIG.match(expr)
            if cfg:
                result.config_line = text.count("\n", 0, m.start()) + 1
                for rx in (_KWARG, _DICT_ITEM):
                    for a in rx.finditer(cfg.group(1)):
                        k, s, lst, w = a.groups()
                        result.config[k] = s or lst or w
                        result.config_lines[k] = result.config_line + cfg.group(1).count(
                            "\n", 0, a.start()) + m.group(0).count("\n", 0, m.group(0).find(
                                cfg.group(1)))
                out.append(_blank(raw))
                continue
            out.append(_pad(_render_expr(expr, this_name), raw))
        else:
            out.append(_blank(raw))
    tail = text[pos:]
    out.append(_blank(tail) if dropping() else tail)
    result.text = "".join(out)
    return result


def _pad(value: str, raw: str) -> str:
    # Keep the line count of the original tag.
    return value + "\n" * raw.count("\n")


def _render_expr(expr: str, this_name: str) -> str:
    m = _REF.match(expr)
    if m:
        return m.group(1)
    m = _SOURCE.match(expr)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    if expr == "this" or expr.startswith("this."):
        return this_name
    # var('since'), params.table, ds ... become identifiers named after the expression.
    inner = re.sub(r"""^(var|env_var)\(\s*['"]([^'"]+)['"].*$""", r"\2", expr, flags=re.S)
    return ident(inner)


_PY_NAMED = re.compile(r"%\((\w+)\)s")
_PY_POS = re.compile(r"%s\b|%s(?=\W)|%s$")
_FORMAT = re.compile(r"(?<!\{)\{(\w*(?:\.\w+)*)(?:![rsa])?(?::[^{}]*)?\}(?!\})")


def normalise_placeholders(text: str) -> str:
    """psycopg `%(x)s` / `%s` and str.format `{x}` placeholders -> parseable SQL."""
    if "{{" in text or "{%" in text:
        text = render_jinja(text).text
    text = _PY_NAMED.sub(lambda m: ":" + m.group(1), text)
    text = text.replace("%%", "%")
    text = _PY_POS.sub("?", text)
    return _FORMAT.sub(lambda m: ident(m.group(1)), text)
