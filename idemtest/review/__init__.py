"""`idemtest review`: a static first pass over pipeline code.

Reads Python, SQL (plain and dbt/Jinja) and orchestrator definitions (Airflow, Dagster,
Prefect, crontab) and reports `file:line | issue | risk | fix`. SQL is parsed with sqlglot,
which is imported lazily so importing this package stays cheap.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .model import (
    RULES,
    Finding,
    Job,
    ReviewOptions,
    ReviewResult,
    Rule,
    Severity,
    Skipped,
    Task,
)

if TYPE_CHECKING:
    from .project import ProjectFacts

__all__ = ["RULES", "Finding", "Job", "ReviewOptions", "ReviewResult", "Rule", "Severity",
           "Skipped", "Task", "main", "review_paths"]


def _display(path: Path, roots: list[Path]) -> str:
    for root in roots:
        base = root if root.is_dir() else root.parent
        try:
            rel = path.resolve().relative_to(base.resolve())
        except ValueError:
            continue
        return (Path(root.name) / rel).as_posix() if root.is_dir() and root.name \
            else rel.as_posix()
    return path.as_posix()


def _sibling_sql(path: Path, limit: int = 50, max_bytes: int = 200_000) -> list[str]:
    """The other `.sql` files of the folder: an ETL tool's statement set (insert / update of
    one target) is split across files of one folder."""
    out: list[str] = []
    try:
        for p in sorted(path.parent.glob("*.sql"))[:limit]:
            if p != path and p.is_file() and p.stat().st_size <= max_bytes:
                out.append(p.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return out
    return out


_WRITES_ROWS = re.compile(r"\binsert\s+into\b|\bto_sql\(|\bexecutemany\(|\bcopy_from\(", re.I)


def _only_generators_import(path: Path, limit: int = 50, max_bytes: int = 200_000) -> bool:
    """Is the module imported, within its folder, only by data generators? Then it is their
    database helper (`db.insert_to(table, fake_rows)`): its writes are demo data too."""
    import ast

    from .python_rules import is_data_generator

    pattern = re.compile(rf"^\s*(import\s+\.?{re.escape(path.stem)}\b|"
                         rf"from\s+\.?{re.escape(path.stem)}\s+import\b)", re.M)
    importers = 0
    try:
        for p in sorted(path.parent.glob("*.py"))[:limit]:
            if p == path or not p.is_file() or p.stat().st_size > max_bytes:
                continue
            text = p.read_text(encoding="utf-8", errors="replace")
            if not pattern.search(text):
                continue
            try:
                if not is_data_generator(ast.parse(text)):
                    return False
            except (SyntaxError, ValueError):
                return False
            importers += 1
    except OSError:
        return False
    return importers > 0


def review_file(path: Path, display: str, dialect: str | None, result: ReviewResult,
                options: ReviewOptions | None = None, facts: ProjectFacts | None = None) -> None:
    """Review one file into `result`; anything unreadable is recorded as skipped."""
    from .orchestration import review_crontab, review_orchestration
    from .pyparse import parse_python
    from .python_rules import review_python
    from .source import is_suppressed, kind_of, read_source, suppressions
    from .sqlfile import review_sql_file, sql_dialect_directive
    from .sqlparse import known_dialect

    kind = kind_of(path)
    if kind is None:
        result.skipped.append(Skipped(display, "unsupported file type (not .py, .sql or crontab)"))
        return
    src = read_source(path)
    if src.text is None:
        result.skipped.append(Skipped(display, src.reason or "unreadable"))
        return
    text = src.text
    file_dialect = sql_dialect_directive(text) or dialect
    if file_dialect and not known_dialect(file_dialect):
        result.skipped.append(Skipped(display, f"unknown SQL dialect {file_dialect!r}"))
        return
    hits: list[tuple[int, str, str]] = []
    errors: list[tuple[int, str]] = []
    try:
        if kind == "python":
            try:
                tree = parse_python(text, filename=display)
            except (SyntaxError, ValueError) as e:
                line = getattr(e, "lineno", None)
                result.skipped.append(Skipped(display, f"Python syntax error: {e.msg if isinstance(e, SyntaxError) else e}", line))
                return
            from .python_rules import is_data_generator

            if not (options and options.include_tests) and is_data_generator(tree):
                result.skipped.append(Skipped(
                    display, "data generator (writes fake rows, reads no source, scheduled by "
                             "no orchestrator); --include-tests reviews it"))
                return
            from .python_rules import _ORCHESTRATORS, imports_of

            # (the siblings are read only for a module that writes rows itself)
            if not (options and options.include_tests) and not imports_of(tree) & _ORCHESTRATORS \
                    and _WRITES_ROWS.search(text) and _only_generators_import(path):
                result.skipped.append(Skipped(
                    display, "database helper of data generators only (the modules importing "
                             "it make up their rows); --include-tests reviews it"))
                return
            info = review_python(display, tree, file_dialect,
                                 facts.imported_sql(path) if facts is not None else None)
            if facts is not None:
                info.appending_io = facts.appending_io
                info.sql_file_writes = facts.sql_file_writes
                info.clock_defaults = facts.clock_defaults
                from .python_rules import clock_default_windows, operator_clear_then_file_load

                info.hits.extend(clock_default_windows(tree, info))
                info.hits.extend(operator_clear_then_file_load(info))
                loaders = facts.imported_loaders(path)
                if loaders:
                    # a `try` around the project's own load functions, imported from its
                    # other modules
                    from .python_rules import swallowed_load_errors

                    info.hits.extend(swallowed_load_errors(tree, loaders))
                if facts.param_task_clear:
                    # the clear is a task of another module: its parameterised appends reload
                    halves = {ln for ln, by_param in info.task_appends if by_param}
                    info.hits = [h for h in info.hits if not (h[1] == "IDM202" and h[0] in halves)]
            from .python_rules import (
                append_mode_defaults,
                http_failure_as_no_data,
                mongo_cursors,
                partitioned_parquet_appends,
            )

            info.hits.extend(mongo_cursors(tree))
            info.hits.extend(http_failure_as_no_data(tree))
            info.hits.extend(partitioned_parquet_appends(tree))
            info.hits.extend(append_mode_defaults(tree))
            orch_hits, jobs = review_orchestration(display, tree, info)
            from .python_rules import settled_in_the_file
            from .spark_rules import spark_writes

            hits = settled_in_the_file(tree, info.hits + orch_hits + spark_writes(tree))
            if facts is not None:
                # appends and overwrites of a library function no scheduled code of the project runs
                hits = [h for h in hits if not (h[1] in {"IDM201", "IDM202", "IDM701", "IDM702"}
                                                and facts.run_by_hand_only(path, tree, h[0]))]
            errors = info.skipped
            result.jobs.extend(jobs)
        elif kind == "sql":
            from .source import is_dbt_analysis

            if is_dbt_analysis(path, text):
                result.skipped.append(Skipped(display, "dbt analysis (dbt compiles it, never "
                                                       "runs it)"))
                return
            res = review_sql_file(display, text, file_dialect, siblings=_sibling_sql(path),
                                  is_read=facts.is_read if facts is not None else None,
                                  named=facts.names_file(path) if facts is not None else True,
                                  # a PostgreSQL operator task runs the file, or it is a copy
                                  # of SQL a Python module runs through its DB-API connection
                                  one_txn=facts is not None and (
                                      path.name in facts.pg_task_files
                                      or (not facts.names_file(path)
                                          and facts.embedded_in_py(text))),
                                  referencers=facts.referencers if facts is not None else None,
                                  high_water_models=(facts.high_water_models
                                                     if facts is not None else None))
            hits, errors = res.hits, res.errors
        else:
            hits, jobs = review_crontab(display, text)
            result.jobs.extend(jobs)
    except RecursionError:
        result.skipped.append(Skipped(display, "too deeply nested to analyse"))
        return
    except Exception as e:  # a bug of ours on one file must not cost the review of the others
        result.internal_errors.append(Skipped(
            display, f"internal error of idemtest review ({type(e).__name__}: {e}); the file was "
                     "not reviewed: please report it with the file"))
        return
    result.files_reviewed += 1
    result.paths[display] = str(path.resolve())
    for line, reason in errors:
        result.skipped.append(Skipped(display, reason, line))
    sup = suppressions(text)
    seen: set[tuple[int, str]] = set()
    for line, rule_id, detail in hits:
        if (line, rule_id) in seen or (options is not None and not options.wants(rule_id)):
            continue
        seen.add((line, rule_id))
        if is_suppressed(sup, line, rule_id):
            result.suppressed += 1
            continue
        result.findings.append(Finding(display, line, rule_id, detail))


def review_paths(paths: Iterable[str | Path], dialect: str | None = None,
                 options: ReviewOptions | None = None) -> ReviewResult:
    """Review files and directories; the library entry point behind `idemtest review`.

    Inside a folder, test code (tests/, test_*.py, *_test.py, conftest.py; a DAG or flow named
    like a test that imports no test framework is reviewed) and `options.exclude` globs are
    left out; a file named explicitly is always reviewed."""
    from .errors import ReviewUsageError
    from .source import discover
    from .sqlparse import known_dialect

    if dialect and not known_dialect(dialect):
        raise ReviewUsageError(f"unknown SQL dialect {dialect!r}")
    opts = options or ReviewOptions()
    roots = [Path(p) for p in paths]
    files, missing, left_out = discover(roots, opts.exclude, opts.include_tests)
    result = ReviewResult(left_out=[Skipped(_display(f, roots), why) for f, why in left_out])
    for m in missing:
        result.skipped.append(Skipped(m.as_posix(), "no such file or directory"))
    from .project import project_facts

    facts = project_facts(files)
    for f in files:
        review_file(f, _display(f, roots), dialect, result, opts, facts)
    result.findings.sort()
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="idemtest review",
        description="Static review of pipeline code: file:line | issue | risk | fix.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories to review")
    p.add_argument("--format", choices=("table", "json", "sarif"), default=None,
                   help="report format (default: table)")
    p.add_argument("--fail-on", choices=("low", "medium", "high", "none"), default=None,
                   help="exit 1 when a finding of this severity or higher exists (default: high)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="leave out files matching GLOB below a given folder (repeatable)")
    p.add_argument("--select", action="append", default=None, metavar="RULES",
                   help="report only these rules (ids or prefixes, comma-separated: IDM2,IDM301)")
    p.add_argument("--ignore", action="append", default=[], metavar="RULES",
                   help="never report these rules (ids or prefixes, comma-separated)")
    p.add_argument("--include-tests", action="store_true", default=None,
                   help="also review test code (tests/, test_*.py, conftest.py), left out by "
                        "default")
    p.add_argument("--config", default=None, metavar="PYPROJECT",
                   help="read [tool.idemtest.review] from this file (default: the nearest "
                        "pyproject.toml at or above the working directory)")
    p.add_argument("--dialect", default=None,
                   help="SQL dialect (duckdb, postgres, snowflake, bigquery, spark, ...); "
                        "default: try each")
    p.add_argument("--output", "-o", default=None, help="write the report to FILE")
    p.add_argument("--emit-checks", default=None, metavar="DIR",
                   help="write a ready-to-run idemtest check module per Airflow DAG understood into DIR")
    p.add_argument("--list-rules", action="store_true", help="list the rules and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run `idemtest review`; returns 0 (clean), 1 (findings at --fail-on), 2 (usage error),
    3 (an internal error left a file unreviewed; the others are reported)."""
    from .errors import ReviewUsageError
    from .output import render_json, render_rules, render_sarif, render_table

    parser = _parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as e:  # argparse exits 2 on bad usage, 0 on --help
        return int(e.code) if isinstance(e.code, int) else 2
    if args.list_rules:
        sys.stdout.write(render_rules())
        return 0
    if not args.paths:
        parser.print_usage(sys.stderr)
        sys.stderr.write("idemtest review: error: at least one PATH is required\n")
        return 2
    try:
        from .config import find_pyproject, merge_options, read_config

        cfg_path = Path(args.config) if args.config else find_pyproject(Path.cwd())
        if args.config and not cfg_path.is_file():  # type: ignore[union-attr]
            raise ReviewUsageError(f"--config {args.config}: no such file")
        section = read_config(cfg_path)
        options = merge_options(section, args.exclude, args.select, args.ignore,
                                args.include_tests)
        fmt = args.format or section.get("format", "table")
        fail_on = args.fail_on or section.get("fail-on", "high")
        if fmt not in ("table", "json", "sarif"):
            raise ReviewUsageError(f"{cfg_path}: format must be table, json or sarif, got {fmt!r}")
        if fail_on not in ("low", "medium", "high", "none"):
            raise ReviewUsageError(
                f"{cfg_path}: fail-on must be low, medium, high or none, got {fail_on!r}")
        result = review_paths(args.paths, dialect=args.dialect or section.get("dialect"),
                              options=options)
    except ReviewUsageError as e:
        sys.stderr.write(f"idemtest review: error: {e}\n")
        return 2
    if args.emit_checks:
        from .emit import emit_checks

        written = emit_checks(result.jobs, [Path(p) for p in args.paths], Path(args.emit_checks))
        sys.stderr.write(f"idemtest review: wrote {len(written)} check module(s) to {args.emit_checks}"
                         + "".join(f"\n  {w}" for w in written) + "\n")
    render = {"table": render_table, "json": render_json, "sarif": render_sarif}[fmt]
    report = render(result)
    if args.output:
        try:
            Path(args.output).write_text(report, encoding="utf-8")
        except OSError as e:
            sys.stderr.write(f"idemtest review: error: cannot write {args.output}: {e}\n")
            return 2
    else:
        sys.stdout.write(report)
    for err in result.internal_errors:
        sys.stderr.write(f"idemtest review: {err.file}: {err.reason}\n")
    if result.internal_errors:
        return 3  # not a clean bill: some files were not reviewed at all
    if fail_on == "none":
        return 0
    return 1 if result.at_or_above(Severity[fail_on.upper()]) else 0
