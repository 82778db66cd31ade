"""The real labelled corpus: public pipeline code nobody here wrote, for `idemtest review`.

The files themselves are not committed (their code is other people's): the manifest
(tests/review/real_corpus/manifest.json) names each file's repository, commit, path,
licence and sha256, and this script copies them out of local git snapshots of those
repositories into tests/review/real_corpus/files/<owner>__<repo>/<path> (git-ignored).

Run: python bench/real_corpus.py [--mirror DIR]   (DIR holds <owner>+<repo>/repo git dirs;
default /work/.mirror, or $IDEMTEST_CORPUS_MIRROR). Labels are in labels.json beside the
manifest: for every file, the idempotency risks found by reading it (line, rule class, why).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "review" / "real_corpus"
FILES = REAL / "files"
MANIFEST = REAL / "manifest.json"
LABELS = REAL / "labels.json"


def entries() -> list[dict[str, object]]:
    return list(json.loads(MANIFEST.read_text(encoding="utf-8")))


def key(entry: dict[str, object]) -> str:
    """The file's path under files/: `<owner>__<repo>/<path>`."""
    return f"{str(entry['repo']).replace('/', '__')}/{entry['path']}"


def labels() -> dict[str, dict[str, Any]]:
    return dict(json.loads(LABELS.read_text(encoding="utf-8"))["files"])


Key = tuple[str, int, str]  # file key, line, rule


def truth(min_severity: int = 2, heldout: bool | None = None) -> set[Key]:
    """Labelled risks at `min_severity` (2 = medium) and above; a label whose rule this
    version does not define still counts (it is a miss)."""
    from idemtest.review.model import RULES

    out: set[Key] = set()
    for k, v in labels().items():
        if heldout is not None and v["heldout"] != heldout:
            continue
        for r in v["risks"]:
            rule = RULES.get(r["rule"])
            if rule is None or int(rule.severity) >= min_severity:
                out.add((k, int(r["line"]), str(r["rule"])))
    return out


def heldout_keys() -> set[str]:
    return {k for k, v in labels().items() if v["heldout"]}


def review_each() -> tuple[list[Key], list[tuple[str, int | None, str]], list[str], int]:
    """Review the corpus as a user would (one run over files/): (medium+ findings, skipped,
    crashes, files reviewed). If the run raises, each file is reviewed alone to count crashes."""
    from idemtest.review import review_paths

    def rel(display: str) -> str:
        return display.split("/", 1)[1] if display.startswith("files/") else display

    try:
        res = review_paths([FILES])
    except Exception:  # a crash is what is being counted: find which files
        crashes = []
        for e in entries():
            try:
                review_paths([FILES / key(e)])
            except Exception as exc:
                crashes.append(f"{key(e)}: {type(exc).__name__}: {exc}")
        return [], [], crashes, 0
    found = [(rel(f.file), f.line, f.rule_id) for f in res.findings if int(f.severity) >= 2]
    left_out = getattr(res, "left_out", [])  # older versions have none
    skipped = [(rel(s.file), s.line, s.reason) for s in res.skipped + left_out]
    # a rule that raises on a file leaves that file unreviewed: a crash all the same
    crashed = [f"{rel(s.file)}: {s.reason}" for s in getattr(res, "internal_errors", [])]
    return found, skipped, crashed, res.files_reviewed


def score(pred: list[Key], gold: set[Key], only: set[str] | None = None) -> dict[str, float]:
    """Precision/recall of `pred` against `gold`, optionally on the files in `only`."""
    if only is not None:
        pred = [p for p in pred if p[0] in only]
        gold = {g for g in gold if g[0] in only}
    tp = sum(1 for p in pred if p in gold)
    return {"predictions": len(pred), "tp": tp, "labels": len(gold),
            "found": len(set(pred) & gold),
            "precision": tp / len(pred) if pred else 1.0,
            "recall": len(set(pred) & gold) / len(gold) if gold else 1.0}


def missing() -> list[str]:
    """Manifest files absent or altered under files/ (empty when the corpus is ready)."""
    out = []
    for e in entries():
        p = FILES / key(e)
        if not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != e["sha256"]:
            out.append(key(e))
    return out


def materialise(mirror: Path) -> tuple[int, list[str]]:
    """Copy every manifest file out of its snapshot; returns (copied, problems)."""
    copied, problems = 0, []
    for e in entries():
        dest = FILES / key(e)
        if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == e["sha256"]:
            continue
        git_dir = mirror / str(e["repo"]).replace("/", "+") / "repo"
        if (git_dir / ".git").is_dir():  # a snapshot kept with its work tree
            git_dir = git_dir / ".git"
        if not git_dir.is_dir():
            problems.append(f"{key(e)}: no snapshot of {e['repo']} at {git_dir}")
            continue
        proc = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{e['commit']}:{e['path']}"],
                              capture_output=True, check=False)
        if proc.returncode != 0:
            problems.append(f"{key(e)}: {proc.stderr.decode(errors='replace').strip()[:120]}")
            continue
        if hashlib.sha256(proc.stdout).hexdigest() != e["sha256"]:
            problems.append(f"{key(e)}: content differs from the manifest's sha256")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(proc.stdout)
        copied += 1
    return copied, problems


def errors() -> list[str]:
    """False positives and missed risks at medium+ on the TUNED repositories only: what a
    rule change may be made from. The held-out repositories are never listed (read them and
    they stop measuring how the rules do on code they were not fitted to)."""
    found, _, _, _ = review_each()
    gold = truth(heldout=False)
    held = heldout_keys()
    why = {(k, int(r["line"]), str(r["rule"])): str(r["why"])
           for k, v in labels().items() for r in v["risks"]}
    out = [f"FP   {k}:{ln} {rule}" for k, ln, rule in sorted(set(found))
           if k not in held and (k, ln, rule) not in gold]
    out += [f"MISS {k}:{ln} {rule}  ({why.get((k, ln, rule), '')})"
            for k, ln, rule in sorted(gold - set(found))]
    return out


def round_keys(round_no: int) -> set[str]:
    """Files of measurement round `round_no` (rounds 5+: repositories labelled before the
    rules were run on them, then measured once)."""
    return {k for k, v in labels().items() if v.get("round") == round_no}


def first_contact() -> dict[str, dict[str, Any]]:
    """The recorded first-contact figures per round: what the rules of that day scored on
    the round's files the one time they were run on them, before any fix made from them."""
    return dict(json.loads(LABELS.read_text(encoding="utf-8")).get("first_contact", {}))


def pooled_first_contact(since: int = 8) -> dict[str, Any]:
    """Rounds `since`+ pooled at first contact: overall, and per rule. Records before round 21
    kept no list of true positives: for them a rule's are the round's labels of that rule,
    medium+, not missed, leaving out labels (and files) relabelled after the measurement."""
    from idemtest.review.model import RULES

    recs = {int(r): v for r, v in first_contact().items() if int(r) >= since}
    out: dict[str, Any] = {"rounds": sorted(recs), "files": sum(v["files"] for v in recs.values())}
    for k in ("tp", "predictions", "found", "labels"):
        out[k] = sum(int(v[k]) for v in recs.values())
    per: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "miss": 0})
    lab = labels()
    for r, v in recs.items():
        for kind, field in (("fp", "false_positives"), ("miss", "missed"), ("tp", "true_positives")):
            for f in v.get(field, []):  # true positives: recorded since round 21 (exact)
                per[f.rsplit(" ", 1)[1]][kind] += 1
        if "true_positives" in v:
            continue
        missed = {tuple(m.rsplit(" ", 1)) for m in v["missed"]}
        for key_, entry in lab.items():
            if entry.get("round") != r or "relabelled" in entry:
                continue  # a file relabelled after its measurement: its labels then are unknown
            for risk in entry["risks"]:
                if "relabelled" in risk:
                    continue
                rule = RULES.get(risk["rule"])
                if rule is not None and int(rule.severity) < 2:
                    continue
                if (f"{key_}:{risk['line']}", risk["rule"]) not in missed:
                    per[risk["rule"]]["tp"] += 1
    out["per_rule"] = dict(per)
    return out


def record_first_contact(round_no: int) -> dict[str, Any]:
    """Measure round `round_no` once and record it in labels.json (refuses a second time:
    a first contact cannot be repeated after its errors were read)."""
    data = json.loads(LABELS.read_text(encoding="utf-8"))
    if str(round_no) in data.get("first_contact", {}):
        raise SystemExit(f"round {round_no} was measured already: {data['first_contact'][str(round_no)]}")
    only = round_keys(round_no)
    if not only:
        raise SystemExit(f"no file has round {round_no} in labels.json")
    found, _, crashes, _ = review_each()
    if crashes:
        # a crash scores its files as silent: that measures the bug, not the rules
        raise SystemExit(f"round {round_no} not recorded: the review crashed on {len(crashes)} "
                         "file(s); fix the crash first:\n  " + "\n  ".join(crashes[:10]))
    gold = truth()
    sc = score(found, gold, only)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    rec: dict[str, Any] = {
        "rules_commit": commit, "files": len(only),
        "repositories": sorted({k.split("/", 1)[0] for k in only}),
        **{k: sc[k] for k in ("predictions", "tp", "labels", "found")},
        "precision": round(sc["precision"], 3), "recall": round(sc["recall"], 3),
        "crashes": len(crashes),
        "false_positives": sorted(f"{k}:{ln} {r}" for k, ln, r in set(found)
                                  if k in only and (k, ln, r) not in gold),
        "missed": sorted(f"{k}:{ln} {r}" for k, ln, r in gold - set(found) if k in only),
        "true_positives": sorted(f"{k}:{ln} {r}" for k, ln, r in set(found) & gold if k in only),
    }
    data.setdefault("first_contact", {})[str(round_no)] = rec
    LABELS.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", default=os.environ.get("IDEMTEST_CORPUS_MIRROR", "/work/.mirror"))
    ap.add_argument("--errors", action="store_true",
                    help="list false positives and misses on the tuned repositories (never "
                         "the held-out ones)")
    ap.add_argument("--first-contact", type=int, metavar="ROUND",
                    help="measure a new round's files once and record the figures in labels.json")
    args = ap.parse_args()
    if args.first_contact is not None:
        rec = record_first_contact(args.first_contact)
        print(f"round {args.first_contact} first contact: precision {rec['precision']:.2f} "
              f"({rec['tp']}/{rec['predictions']}), recall {rec['recall']:.2f} "
              f"({rec['found']}/{rec['labels']}) on {rec['files']} files")
        for line in rec["false_positives"]:
            print("  FP  ", line)
        for line in rec["missed"]:
            print("  MISS", line)
        return 0
    if args.errors:
        for line in errors():
            print(line)
        return 0
    copied, problems = materialise(Path(args.mirror))
    for p in problems:
        print("  problem:", p)
    n = len(entries())
    print(f"real corpus: {n - len(missing())}/{n} files present ({copied} copied now) in {FILES}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
