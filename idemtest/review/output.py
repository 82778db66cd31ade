"""Report formats: a table for people, JSON for scripts, SARIF 2.1.0 for code-scanning UIs."""

from __future__ import annotations

import json
from typing import Any

from .model import RULES, ReviewResult, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}

def _loc(file: str, line: int | None) -> str:
    return f"{file}:{line}" if line else file

def render_table(result: ReviewResult) -> str:
    rows = [(_loc(f.file, f.line), f"{f.rule_id} {f.issue}", f.severity.label, f.rule.fix_text)
            for f in sorted(result.findings)]
    lines: list[str] = []
    header = ("file:line", "issue", "risk", "fix")
    if rows:
        widths = [min(max(len(r[i]) for r in [header, *rows]), cap)
                  for i, cap in enumerate((60, 90, 6))]
        fmt = " | ".join(f"{{:<{w}}}" for w in widths) + " | {}"
        lines.append(fmt.format(*header))
        lines.append("-+-".join("-" * w for w in widths) + "-+-" + "-" * 3)
        lines.extend(fmt.format(*r) for r in rows)
    if result.jobs:
        lines.append("")
        lines.append("Jobs found:")
        for j in result.jobs:
            lines.append(f"  {_loc(j.file, j.line)} {j.kind} {j.name} "
                         f"(cadence: {j.cadence or 'unscheduled'})")
            for t in j.tasks:
                lines.append(f"    - {t.name}: reads {', '.join(t.inputs) or '-'}; "
                             f"writes {', '.join(t.outputs) or '-'}")
    if result.skipped:
        lines.append("")
        lines.append("Skipped:")
        for s in sorted(result.skipped, key=lambda s: (s.file, s.line or 0)):
            lines.append(f"  {_loc(s.file, s.line)}: {s.reason}")
    counts = {sev: sum(1 for f in result.findings if f.severity == sev) for sev in Severity}
    lines.append("")
    lines.append(
        f"{len(result.findings)} finding(s) (high {counts[Severity.HIGH]}, medium "
        f"{counts[Severity.MEDIUM]}, low {counts[Severity.LOW]}) in {result.files_reviewed} "
        f"file(s); {len(result.skipped)} skipped; {result.suppressed} suppressed")
    return "\n".join(lines).lstrip("\n") + "\n"

def to_dict(result: ReviewResult) -> dict[str, Any]:
    return {
        "tool": "idemtest review",
        "summary": {"files_reviewed": result.files_reviewed, "findings": len(result.findings),
                    "skipped": len(result.skipped), "suppressed": result.suppressed},
        "findings": [
            {"file": f.file, "line": f.line, "rule": f.rule_id, "severity": f.severity.label,
             "issue": f.issue, "risk": f.rule.risk, "fix": f.rule.fix_text,
             "scenario": f.rule.scenario}
            for f in sorted(result.findings)
        ],
        "skipped": [{"file": s.file, "line": s.line, "reason": s.reason}
                    for s in sorted(result.skipped, key=lambda s: (s.file, s.line or 0))],
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

def render_sarif(result: ReviewResult) -> str:

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
             "artifactLocation": {"uri": f.file},
             "region": {"startLine": f.line}}}]}
        for f in sorted(result.findings)
    ]
    notifications = [
        {"level": "warning", "message": {"text": f"skipped {_loc(s.file, s.line)}: {s.reason}"}}
        for s in result.skipped
    ]
    doc = {
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [{
            "tool": {"driver": {"name": "idemtest-review", "informationUri":
                                "https://pypi.org/project/idemtest/", "rules": rules}},
            "results": results,
            "invocations": [{"executionSuccessful": True,
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
