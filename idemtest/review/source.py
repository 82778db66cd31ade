"""Finding the files to review, reading them safely, and in-line suppression comments."""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 2 * 1024 * 1024
SKIP_DIRS = {"__pycache__", "node_modules", "venv", ".venv", "site-packages", "dist", "build",
             "target", "dbt_packages", "logs"}
_SUPPRESS = re.compile(r"(?:#|--)\s*idemtest:\s*ignore(?:\[([A-Za-z0-9_,\s]+)\])?")


def kind_of(path: Path) -> str | None:
    from .orchestration import is_crontab

    suffix = path.suffix.lower()
    if suffix == ".py":
        return "python"
    if suffix == ".sql":
        return "sql"
    if is_crontab(path.as_posix()):
        return "cron"
    return None


TEST_DIRS = {"tests", "test", "testing"}


# a test framework imported, or a test function/class defined
_TEST_FRAMEWORK = re.compile(r"^\s*(import|from)\s+(pytest|unittest|nose)\b|"
                             r"^\s*class\s+Test\w*\s*[(:]", re.M)
# a pipeline defined at the top level: an Airflow DAG, a Dagster/Prefect decorated definition
_PIPELINE_DEF = re.compile(r"^\s*(\w+\s*=\s*|with\s+)(models\.)?DAG\(|"
                           r"^@(dag|flow|asset|multi_asset|job|graph_asset)\b", re.M)


def is_test_code(rel: str, text: str | None = None) -> bool:
    """Test code runs under a test runner, not an orchestrator: its writes are fixtures.
    A file named like a test (`x_test.py`) that defines a DAG or flow and imports no test
    framework is a pipeline someone named "test" (a trial DAG): it runs, so it is reviewed
    when its `text` is given. So is a `.py` file under a test-named folder (`dags/test/x.py`)
    that defines a DAG or flow and imports no test framework: a folder of trial or staging
    DAGs the orchestrator still loads and schedules."""
    parts = rel.split("/")
    name = parts[-1]
    if name == "conftest.py":
        return True
    if any(p in TEST_DIRS for p in parts[:-1]):
        return text is None or not name.endswith(".py") or bool(_TEST_FRAMEWORK.search(text)) \
            or not _PIPELINE_DEF.search(text)
    if not (name.endswith(".py") and (name.startswith("test_") or name[:-3].endswith("_test"))):
        return False
    return text is None or bool(_TEST_FRAMEWORK.search(text)) or not _PIPELINE_DEF.search(text)


_DBT_JINJA = re.compile(r"\{\{\s*(ref|source|config|this)\b|\bis_incremental\(\)")
_ANALYSIS_PATHS = re.compile(r"^analysis-paths\s*:\s*\[([^\]]*)\]", re.M)


def is_dbt_analysis(path: Path, text: str) -> bool:
    """A dbt analysis: dbt compiles it (into target/) and never runs it, so its config and
    SQL write nothing. Under a dbt_project.yml its `analysis-paths` say where analyses are
    (default `analyses`); with no project file in sight, a dbt-templated file in an
    `analyses/` or `analysis/` folder (both names are dbt defaults, old and new)."""
    for parent in list(path.resolve().parents)[:8]:
        project = parent / "dbt_project.yml"
        if project.is_file():
            try:
                m = _ANALYSIS_PATHS.search(project.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                return False
            dirs = [d.strip().strip("'\"") for d in m.group(1).split(",")] if m else ["analyses"]
            rel = path.resolve().relative_to(parent).as_posix()
            return any(d and (rel + "/").startswith(d.rstrip("/") + "/") for d in dirs)
    return any(p in {"analyses", "analysis"} for p in path.parts[:-1]) and bool(
        _DBT_JINJA.search(text))


def excluded(rel: str, patterns: list[str]) -> bool:
    """`rel` (posix, below a root) matches a glob, itself or through a parent folder."""
    for pat in patterns:
        pat = pat.strip().rstrip("/")
        if pat and any(fnmatch.fnmatchcase(rel, g) for g in
                       (pat, f"*/{pat}", f"{pat}/*", f"*/{pat}/*")):
            return True
    return False


def _head(path: Path, rel: str, limit: int = 200_000) -> str | None:
    """The start of a file named like a test or under a test-named folder, to tell a test
    from a DAG named "test"."""
    name = path.name
    if not name.endswith(".py") or name == "conftest.py":
        return None
    if not (name.startswith("test_") or name[:-3].endswith("_test")
            or any(p in TEST_DIRS for p in rel.split("/")[:-1])):
        return None
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return f.read(limit)
    except OSError:
        return None


def discover(paths: list[Path], exclude: list[str] | None = None,
             include_tests: bool = False
             ) -> tuple[list[Path], list[Path], list[tuple[Path, str]]]:
    """(files to review, paths that do not exist, (file left out, why)). Files named
    explicitly are always reviewed; inside a folder, `exclude` globs and (unless
    `include_tests`) test code are left out."""
    found: list[Path] = []
    missing: list[Path] = []
    left_out: list[tuple[Path, str]] = []
    for p in paths:
        if not p.exists():
            missing.append(p)
        elif p.is_file():
            found.append(p)
        else:
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames
                                     if not d.startswith(".") and d not in SKIP_DIRS)
                for fn in sorted(filenames):
                    fp = Path(dirpath) / fn
                    if kind_of(fp) is None:
                        continue
                    rel = fp.relative_to(p).as_posix()
                    if excluded(rel, exclude or []):
                        left_out.append((fp, "matches --exclude"))
                        continue
                    if not include_tests and is_test_code(rel, _head(fp, rel)):
                        left_out.append((fp, "test code (--include-tests reviews it)"))
                        continue
                    found.append(fp)
    return list(dict.fromkeys(found)), missing, left_out


@dataclass
class Source:
    text: str | None
    reason: str | None  # why the file was skipped


def read_source(path: Path) -> Source:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return Source(None, f"file too large ({size} bytes > {MAX_BYTES})")
        data = path.read_bytes()
    except OSError as e:
        return Source(None, f"cannot read: {e.strerror or e}")
    if b"\x00" in data[:8192]:
        return Source(None, "binary file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return Source(None, f"not UTF-8 text (byte {e.start})")
    return Source(text, None)


def suppressions(text: str) -> dict[int, set[str] | None]:
    """line -> rule ids silenced there (None = every rule)."""
    out: dict[int, set[str] | None] = {}
    for i, line in enumerate(text.splitlines(), start=1):
        m = _SUPPRESS.search(line)
        if m:
            out[i] = {r.strip().upper() for r in m.group(1).split(",") if r.strip()} \
                if m.group(1) else None
    return out


def is_suppressed(sup: dict[int, set[str] | None], line: int, rule_id: str) -> bool:
    for ln in (line, line - 1):
        if ln in sup:
            ids = sup[ln]
            if ids is None or rule_id in ids:
                return True
    return False
