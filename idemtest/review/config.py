"""`[tool.idemtest.review]` in pyproject.toml: the review's options kept with the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ReviewUsageError
from .model import RULES, ReviewOptions

KEYS = {"exclude", "select", "ignore", "include-tests", "dialect", "fail-on", "format"}


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start`."""
    start = start.resolve()
    for d in (start, *start.parents):
        p = d / "pyproject.toml"
        if p.is_file():
            return p
    return None


def _load_toml(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if "idemtest.review" not in text:
        return {}
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError as e:
            raise ReviewUsageError(
                f"{path} has [tool.idemtest.review] but no TOML reader is installed on this "
                "Python; fix: `pip install tomli` (or use Python 3.11+)") from e
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ReviewUsageError(f"{path} is not valid TOML: {e}") from e
    section = doc.get("tool", {}).get("idemtest", {}).get("review", {})
    if not isinstance(section, dict):
        raise ReviewUsageError(f"{path}: [tool.idemtest.review] must be a table")
    return section


def read_config(path: Path | None) -> dict[str, Any]:
    """The `[tool.idemtest.review]` table of `path` (empty when there is none), checked."""
    if path is None:
        return {}
    section = _load_toml(path)
    unknown = sorted(set(section) - KEYS)
    if unknown:
        raise ReviewUsageError(
            f"{path}: unknown key(s) {', '.join(unknown)} in [tool.idemtest.review]; "
            f"known: {', '.join(sorted(KEYS))}")
    for key in ("exclude", "select", "ignore"):
        v = section.get(key)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            raise ReviewUsageError(f"{path}: [tool.idemtest.review] {key} must be a list of "
                                   f"strings, got {v!r}")
    if "include-tests" in section and not isinstance(section["include-tests"], bool):
        raise ReviewUsageError(f"{path}: [tool.idemtest.review] include-tests must be true or "
                               f"false, got {section['include-tests']!r}")
    return section


def check_rules(items: list[str], flag: str) -> list[str]:
    """Rule ids or prefixes, upper-cased; a value that names no rule is a usage error."""
    out = []
    for raw in items:
        for item in raw.split(","):
            item = item.strip().upper()
            if not item:
                continue
            if not any(r.startswith(item) for r in RULES):
                raise ReviewUsageError(
                    f"{flag} {item!r} names no rule; rules are {', '.join(RULES)} "
                    "(a prefix such as IDM1 selects a group)")
            out.append(item)
    return out


def merge_options(section: dict[str, Any], exclude: list[str], select: list[str] | None,
                  ignore: list[str], include_tests: bool | None) -> ReviewOptions:
    """Command-line values over pyproject's: globs and ignores add up; --select replaces."""
    sel = select if select is not None else section.get("select")
    return ReviewOptions(
        exclude=[*section.get("exclude", []), *exclude],
        select=check_rules(sel, "--select") if sel is not None else None,
        ignore=check_rules([*section.get("ignore", []), *ignore], "--ignore"),
        include_tests=include_tests if include_tests is not None
        else bool(section.get("include-tests", False)),
    )
