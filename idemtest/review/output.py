"""Report formats: a table for people, JSON for scripts, SARIF 2.1.0 for code-scanning UIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .model import RULES, ReviewResult, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}

def _loc(file: str, line: int | None) -> str:
    return f"{file}:{line}" if line else file

TABLE_WIDTH = 100  # every line of the table fits a 100-column terminal
_COLS = (("file:line", 26), ("issue", 31), ("risk", 6))  # the fix takes what is left


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def render_table(result: ReviewResult) -> str:
    fix_w = TABLE_WIDTH - sum(w for _, w in _COLS) - 3 * len(_COLS)
    widths = [w for _, w in _COLS] + [fix_w]
    lines: list[str] = []
    if result.findings:
        lines.append(" | ".join(f"{h:<{w}}" for (h, w) in zip(
            [h for h, _ in _COLS] + ["fix"], widths, strict=True)).rstrip())
        lines.append("-+-".join("-" * w for w in widths))
        for f in sorted(result.findings):
            loc = _loc(f.file, f.line)
            if len(loc) > widths[0]:  # a long path gets a line of its own, unbroken
                lines += _wrap(loc, TABLE_WIDTH)
                loc = ""
            cells = [[loc],
                     _wrap(f"{f.rule_id} {f.issue}", widths[1]),
                     [f.severity.label], _wrap(f.rule.fix_text, widths[3])]
            for k in range(max(len(c) for c in cells)):
                row = [c[k] if k < len(c) else "" for c in cells]
                lines.append(" | ".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=True))
                             .rstrip())
    if result.jobs:
        lines.append("")
        lines.append("Jobs found:")
        for j in result.jobs:
            lines += _wrap(f"  {_loc(j.file, j.line)} {j.kind} {j.name} "
                           f"(cadence: {j.cadence or 'unscheduled'})", TABLE_WIDTH)
            for t in j.tasks:
                lines += ["    " + x for x in _wrap(
                    f"- {t.name}: reads {', '.join(t.inputs) or '-'}; "
                    f"writes {', '.join(t.outputs) or '-'}", TABLE_WIDTH - 4)]
    if result.skipped:
        lines.append("")
        lines.append("Skipped:")
        for s in sorted(result.skipped, key=lambda s: (s.file, s.line or 0)):
            lines += ["  " + x for x in _wrap(f"{_loc(s.file, s.line)}: {s.reason}",
                                              TABLE_WIDTH - 2)]
    if result.internal_errors:
        lines.append("")
        lines.append("Not reviewed (internal error of idemtest review; please report it):")
        for s in result.internal_errors:
            lines += ["  " + x for x in _wrap(f"{s.file}: {s.reason}", TABLE_WIDTH - 2)]
    counts = {sev: sum(1 for f in result.findings if f.severity == sev) for sev in Severity}
    lines.append("")
    lines += _wrap(
        f"{len(result.findings)} finding(s) (high {counts[Severity.HIGH]}, medium "
        f"{counts[Severity.MEDIUM]}, low {counts[Severity.LOW]}) in {result.files_reviewed} "
        f"file(s); {len(result.skipped)} skipped; {result.suppressed} suppressed; "
        f"{result.excluded} left out (test code or --exclude)", TABLE_WIDTH)
    return "\n".join(lines).lstrip("\n") + "\n"

def to_dict(result: ReviewResult) -> dict[str, Any]:
    return {
        "tool": "idemtest review",
        "summary": {"files_reviewed": result.files_reviewed, "findings": len(result.findings),
                    "skipped": len(result.skipped), "suppressed": result.suppressed,
                    "excluded": result.excluded},
        "left_out": [{"file": s.file, "reason": s.reason} for s in result.left_out],
        "findings": [
            {"file": f.file, "line": f.line, "rule": f.rule_id, "severity": f.severity.label,
             "issue": f.issue, "risk": f.rule.risk, "fix": f.rule.fix_text,
             "scenario": f.rule.scenario}
            for f in sorted(result.findings)
        ],
        "skipped": [{"file": s.file, "line": s.line, "reason": s.reason}
                    for s in sorted(result.skipped, key=lambda s: (s.file, s.line or 0))],
        "internal_errors": [{"file": s.file, "reason": s.reason} for s in result.internal_errors],
        "jobs": [
            {"file": j.file, "line": j.line, "kind": j.kind, "name": j.name,
             "cadence": j.cadence,
             "tasks": [{"name": t.name, "line": t.line, "inputs": t.inputs,
                        "outputs": t.outputs} for t in j.tasks]}
            for j in result.jobs
        ],
    }

def render_json(result: ReviewResult) -> str:
    return json.dumps(to_dict(result), indent=2) + "\n"

def sarif_base(start: Path | None = None) -> Path:
    """Where SARIF paths are relative to: the repository root holding the working directory
    (code scanning resolves results against it), else the working directory itself."""
    cwd = (start or Path.cwd()).resolve()
    for d in (cwd, *cwd.parents):
        if (d / ".git").exists():
            return d
    return cwd


def _artifact(result: ReviewResult, display: str, base: Path) -> dict[str, Any]:
    absolute = Path(result.paths.get(display, display)).resolve()
    try:
        return {"uri": absolute.relative_to(base).as_posix(), "uriBaseId": "SRCROOT"}
    except ValueError:  # outside the repository: an absolute file URI
        return {"uri": absolute.as_uri()}


def render_sarif(result: ReviewResult, base: Path | None = None) -> str:
    root = base.resolve() if base is not None else sarif_base()

    rules = [
        {"id": r.id, "name": r.name,
         "shortDescription": {"text": r.issue},
         "fullDescription": {"text": r.risk},
         "help": {"text": r.fix_text, "markdown": f"**Fix:** {r.fix_text}"},
         "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
         "properties": {"category": r.category, "severity": r.severity.label}}
        for r in RULES.values()
    ]
    index = {r.id: i for i, r in enumerate(RULES.values())}
    results = [
        {"ruleId": f.rule_id, "ruleIndex": index[f.rule_id], "level": _SARIF_LEVEL[f.severity],
         "message": {"text": f"{f.issue}. Risk: {f.rule.risk}. Fix: {f.rule.fix_text}"},
         "locations": [{"physicalLocation": {
             "artifactLocation": _artifact(result, f.file, root),
             "region": {"startLine": f.line}}}]}
        for f in sorted(result.findings)
    ]
    notifications = [
        {"level": "warning", "message": {"text": f"skipped {_loc(s.file, s.line)}: {s.reason}"}}
        for s in result.skipped
    ] + [{"level": "error", "message": {"text": f"not reviewed {s.file}: {s.reason}"}}
         for s in result.internal_errors]
    doc = {
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [{
            "tool": {"driver": {"name": "idemtest-review", "informationUri":
                                "https://pypi.org/project/idemtest/", "rules": rules}},
            "originalUriBaseIds": {"SRCROOT": {"uri": root.as_uri() + "/"}},
            "results": results,
            "invocations": [{"executionSuccessful": not result.internal_errors,
                             "toolExecutionNotifications": notifications}],
        }],
    }
    return json.dumps(doc, indent=2) + "\n"

def render_rules() -> str:
    lines = []
    for r in RULES.values():
        lines.append(f"{r.id}  [{r.severity.label}] {r.name}: {r.issue}")
        lines.append(f"        why: {r.risk}")
        lines.append(f"        fix: {r.fix_text}")
    return "\n".join(lines) + "\n"
