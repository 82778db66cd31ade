"""Parsing reviewed Python the way the interpreter that runs it would.

Two differences from a bare `ast.parse` matter on real repositories:

- a file written for Python 3.12's f-strings (PEP 701: the outer quote re-used inside a
  replacement field, `f"saved {os.path.join(d, f"x_{n}.csv")}"`) is valid where it runs but a
  syntax error for an older interpreter running the review; the inner quotes of such a line are
  swapped for the other kind and the file is parsed again (lines and columns unchanged);
- `ast.parse` accepts what the compiler then rejects (a `from __future__` import in the middle
  of a file, `return` outside a function): such a file cannot run at all, so it is skipped
  with the compiler's message rather than reviewed as if it could.
"""

from __future__ import annotations

import ast
import sys
import warnings

_PREFIX_CHARS = set("rRbBuUfF")


def _swap_nested_quotes(line: str) -> str | None:
    """The line with each single-quoted f-string's re-used outer quote, inside its replacement
    fields, turned into the other quote; None when there is nothing to swap."""
    out = list(line)
    changed = False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "#":
            break
        if c not in "\"'":
            i += 1
            continue
        j = i
        while j > 0 and line[j - 1] in _PREFIX_CHARS:
            j -= 1
        prefix = line[j:i].lower()
        triple = line[i:i + 3] == c * 3
        if triple or "f" not in prefix:
            # a plain string (or a triple-quoted one, left alone): skip to its end
            q = c * 3 if triple else c
            k = i + len(q)
            while k < n and line[k:k + len(q)] != q:
                k += 2 if line[k] == "\\" and "r" not in prefix else 1
            i = k + len(q)
            continue
        other = "'" if c == '"' else '"'
        depth, k = 0, i + 1
        while k < n:
            ch = line[k]
            if depth == 0:
                if ch == "\\":
                    k += 2
                    continue
                if ch == c:
                    break
                if ch == "{":
                    if line[k + 1:k + 2] == "{":
                        k += 2
                        continue
                    depth = 1
            else:
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                elif ch == c:
                    out[k] = other
                    changed = True
            k += 1
        i = k + 1
    return "".join(out) if changed else None


def parse_python(text: str, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse(text)`, reading PEP 701 f-strings under Python < 3.12 and refusing what the
    compiler refuses. Raises SyntaxError (or ValueError for a NUL byte) like `ast.parse`."""
    with warnings.catch_warnings():
        # the reviewed code's own warnings (invalid escapes ...) are not ours
        warnings.simplefilter("ignore")
        source = text
        for _ in range(50):
            try:
                tree = ast.parse(source, filename=filename)
                break
            except SyntaxError as e:
                lines = source.split("\n")
                ln = (e.lineno or 0) - 1
                fixed = _swap_nested_quotes(lines[ln]) if sys.version_info < (3, 12) \
                    and "f-string" in (e.msg or "") and 0 <= ln < len(lines) else None
                if fixed is None:
                    if source is not text:
                        # report the error of the file as written
                        ast.parse(text, filename=filename)
                    raise
                lines[ln] = fixed
                source = "\n".join(lines)
        else:
            tree = ast.parse(text, filename=filename)
        # what the parser accepts but the compiler refuses (a misplaced `from __future__`,
        # `return` outside a function) cannot run at all
        compile(tree, filename, "exec", dont_inherit=True)
    return tree
