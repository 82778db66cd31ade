"""`idemtest review --emit-checks DIR`: a ready-to-run check module per job the review understood.

One emitter per job kind (`EMITTERS`): a static finding becomes a dynamic proof by
running the written module with `pytest --idempotency`. An emitter returns the file
name and the module's text, or None when the job lacks what a check needs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .._errors import SpecError
from .model import Job

_CREATE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.\"]+)\s*\((.*?)\)\s*;", re.I | re.S)
_TIME_TYPES = ("TIMESTAMP", "DATE", "DATETIME")


@dataclass
class Table:
    """A table's columns as a CREATE TABLE in the reviewed SQL declares them."""

    name: str
    columns: dict[str, str]
    key: list[str]
    schema_file: Path


def schema_tables(roots: Iterable[Path]) -> dict[str, Table]:
    """Every `CREATE TABLE` of the .sql files under the reviewed paths."""
    found: dict[str, Table] = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*.sql"))
        for f in files:
            if f.suffix != ".sql":
                continue
            text = re.sub(r"--[^\n]*", "", f.read_text(errors="replace"))
            for name, body in _CREATE.findall(text):
                cols: dict[str, str] = {}
                key: list[str] = []
                for part in re.split(r",(?![^()]*\))", body):
                    words = part.split()
                    if len(words) < 2 or words[0].upper() in ("PRIMARY", "UNIQUE", "CONSTRAINT", "FOREIGN", "CHECK"):
                        m = re.match(r"\s*PRIMARY\s+KEY\s*\(([^)]*)\)", part, re.I)
                        if m:
                            key = [c.strip().strip('"') for c in m.group(1).split(",")]
                        continue
                    col = words[0].strip('"')
                    rest = " ".join(words[1:])
                    typ = re.split(r"\s+(?:PRIMARY|NOT|NULL|DEFAULT|UNIQUE|REFERENCES)\b", rest, flags=re.I)[0].strip()
                    cols[col] = typ
                    if re.search(r"\bPRIMARY\s+KEY\b", rest, re.I):
                        key = [col]
                found[name.strip('"').lower()] = Table(name.strip('"'), cols, key, f.resolve())
    return found


def job_path(display: str, roots: Iterable[Path]) -> Path:
    """The file a job's display path (relative to a reviewed root or its parent) names."""
    for root in roots:
        base = root if root.is_dir() else root.parent
        for c in (base / display, base.parent / display, Path(display)):
            if c.is_file():
                return c.resolve()
    return Path(display).resolve()


def _rel(path: Path, out_dir: Path) -> str:
    """`path` relative to the emitted module's folder (the check looks there), else absolute."""
    out = out_dir.resolve()
    try:
        common = Path(os.path.commonpath([path, out]))
    except ValueError:  # another drive
        return str(path)
    # in the same tree as the checks (a project's tests/ folder): relative, so the project
    # moves as a whole; in another tree: absolute
    return os.path.relpath(path, out) if len(common.parts) > 2 else str(path)


def _ident(name: str) -> str:
    return re.sub(r"\W+", "_", name).strip("_").lower() or "job"


def _source(table: Table) -> str | None:
    event_time = next((c for c, t in table.columns.items() if t.upper().startswith(_TIME_TYPES)), None)
    key = table.key or [c for c in table.columns if c.endswith("_id")][:1]
    if event_time is None or not key:
        return None
    cols = ", ".join(f"{c!r}: {t!r}" for c, t in table.columns.items())
    k = key[0] if len(key) == 1 else key
    return f"Source({table.name!r}, columns={{{cols}}}, key={k!r}, event_time={event_time!r})"


def emit_airflow(job: Job, tables: dict[str, Table], roots: list[Path], out_dir: Path) -> tuple[str, str] | None:
    produced = {o.lower() for t in job.tasks for o in t.outputs}
    consumed = {i.lower() for t in job.tasks for i in t.inputs}
    inputs = sorted({i for t in job.tasks for i in t.inputs if i.lower() not in produced})
    outputs = sorted({o for t in job.tasks for o in t.outputs if o.lower() not in consumed})
    if not outputs:
        return None  # nothing written that a check could compare
    sources, todo, schemas = [], [], set()
    for name in inputs:
        table = tables.get(name.lower())
        src = _source(table) if table is not None else None
        if src is None:
            todo.append(name)
        else:
            sources.append(src)
            schemas.add(table.schema_file)  # type: ignore[union-attr]
    targets = []
    for name in outputs:
        table = tables.get(name.lower())
        key = (table.key[0] if len(table.key) == 1 else table.key) if table is not None and table.key else None
        if table is not None:
            schemas.add(table.schema_file)
        targets.append(f"Target({name!r}, key={key!r}, created_by_load={table is None})")
    dag_file = job_path(job.file, roots)
    setup = repr(_rel(sorted(schemas)[0], out_dir)) if len(schemas) == 1 else ("None" if not schemas else repr(";\n".join(p.read_text() for p in sorted(schemas))))
    lines = [
        f'"""idemtest check of the Airflow DAG {job.name!r} ({job.file}:{job.line}), written by',
        "`idemtest review --emit-checks`: run it with",
        "",
        "    pytest --idempotency --idem-db postgresql://user@host:5432/postgres " + f"test_{_ident(job.name)}_idempotency.py",
        "",
        f"The review found: schedule {job.cadence or 'none'}; tasks "
        + "; ".join(f"{t.name} (reads {', '.join(t.inputs) or '-'}, writes {', '.join(t.outputs) or '-'})" for t in job.tasks)
        + ".",
        "Windows, retries, catchup and max_active_runs come from the DAG itself when the check runs.",
    ]
    if todo:
        lines += ["", f"TODO: the review found no CREATE TABLE with a key and a time column for {', '.join(todo)}:",
                  "declare them in sources= (idemtest.Source) so idemtest can generate their rows."]
    lines += [
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import idemtest",
        "from idemtest import Source, Target  # noqa: F401",
        "",
        f"test_{_ident(job.name)}_idempotency = idemtest.airflow.check(",
        f"    dag={_rel(dag_file, out_dir)!r},",
        f"    dag_id={job.name!r},",
        f"    sources=[{', '.join(sources)}],",
        f"    targets=[{', '.join(targets)}],",
        f"    setup={setup},",
        ")",
        "",
    ]
    return f"test_{_ident(job.name)}_idempotency.py", "\n".join(lines)


def check_module_source(definitions_path: str, asset_keys: list[str]) -> str:
    """The text of a ready-to-run pytest module checking `asset_keys` of the Dagster
    definitions at `definitions_path` (a .py file or a module name; a relative file is
    looked for from the working directory, then next to the written module)."""
    if not asset_keys or not all(isinstance(k, str) and k.strip() for k in asset_keys):
        raise SpecError(f"asset_keys={asset_keys!r}: name at least one asset key")
    lines = [
        f'"""idemtest checks of the Dagster assets in {definitions_path}, written by `idemtest review --emit-checks`.',
        "",
        "Run them with `pytest --idempotency` (needs `pip install 'idemtest[dagster]'`). Sources come from the",
        "upstream assets' column schemas; a check that cannot tell a source's columns, key or event time says",
        'which `sources={...}` entry to add."""',
        "",
        "import idemtest",
        "",
    ]
    used: set[str] = set()
    for k in asset_keys:
        base = "test_" + "".join(c if c.isalnum() else "_" for c in k).strip("_")
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        lines.append(f"{name} = idemtest.dagster.check(assets={definitions_path!r}, select=[{k!r}])")
    return "\n".join(lines) + "\n"


def emit_dagster(job: Job, tables: dict[str, Table], roots: list[Path], out_dir: Path) -> tuple[str, str] | None:
    """One module per Dagster definitions file: a check per asset that writes a table
    (`idemtest.dagster.check` reads partitions, retry policy and resources from the
    definitions themselves when it runs)."""
    writers = [t.name for t in job.tasks if t.outputs]
    if not writers:
        return None
    defs = job_path(job.file, roots)
    stem = _ident(defs.stem)
    return f"test_{stem}_assets_idempotency.py", check_module_source(_rel(defs, out_dir), writers)


#: job kind -> emitter
EMITTERS: dict[str, Callable[[Job, dict[str, Table], list[Path], Path], tuple[str, str] | None]] = {"airflow": emit_airflow, "dagster": emit_dagster}


def emit_checks(jobs: Iterable[Job], roots: Iterable[Path], out_dir: Path) -> list[Path]:
    """Write one check module per job an emitter understands; the written paths."""
    roots = list(roots)
    tables = schema_tables(roots)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for job in jobs:
        emitter = EMITTERS.get(job.kind)
        made = emitter(job, tables, roots, out_dir) if emitter is not None else None
        if made is None:
            continue
        name, text = made
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
