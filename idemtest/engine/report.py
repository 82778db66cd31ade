"""Failure text and saved failures."""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _json
from .._defaults import ROW_LIMIT, VERSION
from .._errors import ReplayError
from .diff import fmt_value
from .model import ParallelStep, describe_step
from .properties import TITLES

if TYPE_CHECKING:
    from ..spec import Spec
    from .diff import TableDiff
    from .model import Attempt, Finding, Scenario


def suggest_ignore(diffs: list[TableDiff], spec: Spec) -> str:
    """When every difference lies in a few columns the load computes itself
    (not copied from a source), they may be run-time stamps: say so."""
    source_cols = {c for s in spec.sources for c in s.columns}
    lines = []
    for d in diffs:
        # only columns named like a load stamp: a computed count is a real difference
        own = [c for c in d.columns_differ if c not in source_cols and re.search(r"load|ingest|insert|etl|processed|synced|_at$|batch|run_", c, re.I)]
        if d.changed and not d.missing and not d.extra and not d.duplicate_keys and 0 < len(d.columns_differ) <= 2 and own == d.columns_differ:
            cols = ", ".join(repr(c) for c in d.columns_differ)
            lines.append(
                f"  hint: every difference in {d.target} lies in column(s) {cols} — if they record when a row was loaded "
                f"(a run-time stamp), declare them with Target({d.target!r}, ignore=[{cols}]); otherwise this is a real bug"
            )
    return "\n".join(lines)


def render(
    *,
    spec: Spec,
    finding: Finding,
    scenario: Scenario,
    attempts: list[Attempt],
    test_id: str | None,
    saved: str | None,
    examples: tuple[int | None, int] | None = None,
    db: str | None = None,
    found: str | None = None,
    note: str = "",
    others: list[str] | None = None,
) -> str:
    windows = {w.index: w for w in spec.all_windows}
    out = [f"idemtest: {finding.prop} {TITLES.get(finding.prop, '')} — VIOLATED", f"  {finding.headline}", ""]
    n_rows = scenario.data.row_count()
    late = scenario.data.late_rows(spec)
    srcs = ", ".join(f"{len(v)} in {k}" for k, v in scenario.data.sources.items())
    shrunk = ""
    if examples:
        first, total = examples
        shrunk = f"; found at generated scenario {first}, shrunk over {total - (first or 0)} more"
    if found:
        shrunk = f"; {found}"
    if note:
        shrunk += f"; {note}"
    out.append(f"Minimal scenario ({len(scenario.steps)} steps; {n_rows} source row versions: {srcs or 'none'}; {late} late{shrunk}):")
    if spec.crash == "kill":
        out.append("  (crash='kill': every attempt ran in its own process; a crash killed it with os._exit, no finally of the load ran)")
    by_step: dict[int, list[Attempt]] = {}
    for a in attempts:
        by_step.setdefault(a.step, []).append(a)
    for i, step in enumerate(scenario.steps, 1):
        perturbed = isinstance(step, ParallelStep) or step.tag != "nominal" or bool(step.faults)
        mark = "*" if perturbed else " "
        out.append(f" {mark}{i:>2}. {describe_step(step, windows)}")
        for a in by_step.get(i, []):
            if a.outcome != "ok" or perturbed or len(by_step[i]) > 1:
                prefix = f"window {a.window} " if isinstance(step, ParallelStep) else ""
                out.append(f"        {prefix}{a.describe()}")
        if isinstance(step, ParallelStep):
            inter = [b for a in by_step.get(i, []) if a.parallel for b in a.trace]
            if inter:
                out.append("        interleaving (statement by statement):")
                for b in sorted(inter, key=lambda b: getattr(b, "seq", 0))[:40]:
                    out.append(f"          {b.run}: #{b.index} {b.describe(70)}")
        if finding.step == i:
            out.append(f"        ^ {finding.prop} broken here")
            if i < len(scenario.steps):
                out.append(f"    (steps {i + 1}–{len(scenario.steps)} not run)")
            break
    out.append("")
    out.extend(render_sources(spec, scenario))
    if finding.diffs:
        for d in finding.diffs:
            keys = f" (key {', '.join(d.keys)})" if d.keys else ""
            what = {"P1": "against the clean run", "P3": "before → after the failed attempt", "P4": "as the reader saw it, against the state after the run", "P5": "against the reference query"}.get(finding.prop, "")
            out.append(f"Diff of {d.target}{keys}" + (f" {what}:" if what else ":"))
            if finding.prop == "P3":
                out.append(d.render(ROW_LIMIT, missing_title="lost (committed before the failed attempt, gone after it)"))
            elif finding.prop == "P4":
                out.append(d.render(ROW_LIMIT, missing_title="not seen by the reader (there after the run)"))
            elif finding.prop == "P5":
                out.append(d.render(ROW_LIMIT, missing_title="missing (in the reference, not in the target)", extra_title="extra (in the target, not in the reference)"))
            else:
                out.append(d.render(ROW_LIMIT))
        hint = suggest_ignore(finding.diffs, spec)
        if hint:
            out.append(hint)
    if finding.detail:
        out.append("Details:")
        out.extend("  " + line for line in finding.detail.rstrip().splitlines())
    if others:
        out.append("")
        out.append(f"Also broken during this search ({len(others)} more distinct finding(s), property x target; each replays from its file):")
        out.extend(f"  - {line}" for line in others)
    if saved:
        saved = _relative(saved)
        out.append("")
        out.append(f"Saved: {saved}")
        out.append(f"Replay: {replay_command(saved, test_id, db)}")
        out.append(f"    or: idemtest replay {shlex.quote(saved)}{db_option(db)}")
    return "\n".join(out)


def other_finding_line(finding: Finding, scenario: Scenario, saved: str, spec: Spec) -> str:
    """One line for a further distinct finding: property, targets, headline, the
    perturbed steps and the file that replays it."""
    windows = {w.index: w for w in spec.all_windows}
    targets = ", ".join(sorted({d.target for d in finding.diffs})) or "-"
    steps = [describe_step(s, windows) for s in scenario.steps if isinstance(s, ParallelStep) or s.tag != "nominal" or s.faults]
    how = "; ".join(steps[:2]) + (" …" if len(steps) > 2 else "") if steps else "the nominal plan"
    return f"{finding.prop} on {targets}: {' '.join(finding.headline.split())[:120]} ({how}) — saved: {_relative(saved)}"


def render_sources(spec: Spec, scenario: Scenario, limit: int = 12) -> list[str]:
    """The generated source rows, with when each one landed."""
    lines: list[str] = []
    for s in spec.sources:
        versions = scenario.data.sources.get(s.table, [])
        if not versions:
            continue
        lines.append(f"Source rows of {s.table} (in arrival order):")
        landed = None
        for v in versions[:limit]:
            if s.snapshot and v.arrival != landed:
                landed = v.arrival
                lines.append(f"  snapshot landed {v.arrival.isoformat(sep=' ')} (replaces the one before):")
            vals = "  ".join(f"{c}={fmt_value(x)}" for c, x in v.values.items())
            lag = v.arrival - v.event(s)
            late = f"  (arrived {v.arrival.isoformat(sep=' ')}, {_fmt_delta(lag)} late)" if lag.total_seconds() > 0 else ""
            lines.append(f"    {vals}{late}")
        if len(versions) > limit:
            lines.append(f"    … and {len(versions) - limit} more")
    if lines:
        lines.append("")
    return lines


def _fmt_delta(d: Any) -> str:
    secs = int(d.total_seconds())
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s or not (h or m) else "")


def _relative(path: str) -> str:
    """Paths under the working directory print relative: shorter, and pasteable elsewhere."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def db_option(db: str | None) -> str:
    """` --idem-db …` for a failure saved on another sandbox than the default:
    a server is named without its password (libpq reads PGPASSWORD or ~/.pgpass)."""
    if not db:
        return ""
    from ..sandbox import parse_db
    from ..sandbox.postgres.dsn import without_password

    choice = parse_db(db)
    if choice.kind == "duckdb":
        return ""
    return f" --idem-db {shlex.quote(without_password(choice.text) if choice.server else choice.kind)}"


def replay_command(saved: str, test_id: str | None, db: str | None = None) -> str:
    """The command that replays `saved`, with every option it needs."""
    node = f" {shlex.quote(test_id)}" if test_id else ""
    return f"pytest --idempotency --idem-replay {shlex.quote(saved)}{db_option(db)}{node}"


def save_failure(
    directory: Path,
    *,
    spec: Spec,
    scenario: Scenario,
    finding: Finding,
    test_id: str | None,
    db: str,
) -> Path:
    """Write the failing scenario as self-contained JSON: data + schedule + version."""
    payload: dict[str, Any] = {
        "idemtest": VERSION,
        "test": test_id,
        "spec": spec.fingerprint(),
        "db": db,
        "crash": spec.crash,  # a kill-mode failure replays in kill mode
        "property": finding.prop,
        "headline": finding.headline,
        "scenario": scenario.to_json(),
    }
    text = _json.dumps(payload, indent=1)
    digest = hashlib.sha256(_json.stable_key(payload["scenario"]).encode()).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", (test_id or spec.name or "check").split("::")[-1])[:80]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}-{digest}.json"
    path.write_text(text + "\n")
    return path


def load_failure(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        raise ReplayError(f"replay file {str(p)!r} is a folder; pass one .json file from it, e.g. {str(p / '<test>-<digest>.json')!r}")
    if not p.is_file():
        raise ReplayError(f"replay file {str(p)!r} does not exist; saved failures live under .idemtest/failures/")
    try:
        payload = _json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise ReplayError(f"replay file {str(p)!r} is not JSON written by idemtest ({e})") from None
    if not isinstance(payload, dict) or "scenario" not in payload:
        raise ReplayError(f"replay file {str(p)!r} has no 'scenario'; pass a file from .idemtest/failures/")
    return payload


def other_version(path: str | Path, payload: dict[str, Any]) -> str | None:
    """A note when `payload` was saved by another idemtest version, else None."""
    saved = payload.get("idemtest")
    if saved is None or str(saved) == VERSION:
        return None
    return (
        f"{path} was saved by idemtest {saved}; this is idemtest {VERSION}: the scenario replays as saved, "
        "but a change in how idemtest plays scenarios can make it pass or fail differently — if it does, "
        f"replay it with idemtest {saved} (pip install 'idemtest=={saved}') or run the search again"
    )


def warn_other_version(path: str | Path, payload: dict[str, Any]) -> None:
    note = other_version(path, payload)
    if note is not None:
        import warnings

        from .._errors import IdemtestWarning

        warnings.warn(IdemtestWarning(note), stacklevel=3)

