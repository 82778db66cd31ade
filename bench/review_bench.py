"""Precision, recall and speed of `idemtest review` on two labelled corpora, next to
pipeline-lint 0.1.0 (a peer linter on PyPI) run on the same files.

Run: python bench/review_bench.py [--no-install]

1. The corpus written beside the rules (tests/review/corpus).
2. The real corpus (tests/review/real_corpus): public pipeline code nobody here wrote, labelled
   by reading it (labels.json), scored at severity medium and above, overall and on the
   held-out repositories (kept out of rule development) separately; skipped files are listed
   with their reasons and crashes counted. `python bench/real_corpus.py` fetches its files.

Ground truth is the corpus's `# expect: IDMxxx` / `-- expect: IDMxxx` comments
(tests/review/corpus). A prediction counts as a true positive when the same file and line
carry an expected rule of the same class. pipeline-lint's rule ids are mapped onto our rule
classes below; its rules with no counterpart in this corpus (SELECT *, driver collect) are
left out of its precision rather than counted as wrong, and reported separately.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "review" / "corpus"
sys.path.insert(0, str(ROOT))

_EXPECT = re.compile(r"(?:#|--)\s*expect:\s*(IDM\d+(?:\s*,\s*IDM\d+)*)")

# pipeline-lint rule -> the idemtest rules describing the same bug class.
PEER_MAP: dict[str, set[str]] = {
    "DE001": {"IDM201", "IDM202", "IDM601", "IDM107"},  # non-idempotent append
    "DE002": {"IDM203", "IDM301", "IDM502"},  # unscoped overwrite / destructive replace
    "DE003": {"IDM501"},  # hard-coded date: no parameterised reprocessing
    "DE006": {"IDM103"},  # Airflow missing retries
    "DE007": {"IDM101", "IDM105"},  # unsafe catchup / moving start_date
}
PEER_UNSCORED = {"DE004", "DE005"}  # SELECT * into a write, collect(): not labelled here

Key = tuple[str, int, str]  # file relative to corpus, line, rule


def expectations(files: list[Path]) -> set[Key]:
    out: set[Key] = set()
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        for i, line in enumerate(text.splitlines(), start=1):
            m = _EXPECT.search(line)
            if m:
                rel = f.relative_to(CORPUS).as_posix()
                out |= {(rel, i, r.strip()) for r in m.group(1).split(",")}
    return out


def score(pred: list[tuple[str, int, set[str]]], truth: set[Key]) -> dict[str, float]:
    """pred: (file, line, rules it stands for). Returns precision/recall/counts."""
    tp = sum(1 for f, ln, rules in pred if any((f, ln, r) in truth for r in rules))
    covered = {(f, ln, r) for f, ln, rules in pred for r in rules if (f, ln, r) in truth}
    precision = tp / len(pred) if pred else 0.0
    recall = len(covered) / len(truth) if truth else 0.0
    return {"predictions": len(pred), "tp": tp, "precision": precision, "recall": recall,
            "found": len(covered)}


def best_time(fn: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def run_idemtest(files: list[Path], truth: set[Key]) -> dict[str, float]:
    from idemtest.review import review_paths

    result = review_paths([CORPUS])
    pred = []
    for f in result.findings:
        rel = f.file.split("/", 1)[1] if f.file.startswith("corpus/") else f.file
        pred.append((rel, f.line, {f.rule_id}))
    stats = score(pred, truth)
    secs = best_time(lambda: review_paths([CORPUS]))
    stats["files"] = len(files)
    stats["seconds"] = secs
    stats["files_per_s"] = len(files) / secs
    return stats


def ensure_peer(install: bool) -> bool:
    try:
        importlib.import_module("pipeline_lint")
        return True
    except ImportError:
        if not install:
            return False
    print("pipeline-lint is not installed; trying `pip install pipeline-lint==0.1.0` ...")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pipeline-lint==0.1.0"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print("  pip install failed:", (proc.stderr.strip().splitlines() or ["?"])[-1])
        return False
    importlib.invalidate_caches()
    try:
        importlib.import_module("pipeline_lint")
    except ImportError:
        return False
    return True


def run_peer(truth: set[Key]) -> dict[str, float] | None:
    from pipeline_lint.engine import lint_paths  # type: ignore[import-not-found]

    result = lint_paths([CORPUS])
    pred = []
    unscored = 0
    for v in result.violations:
        if v.rule_id in PEER_UNSCORED or v.rule_id not in PEER_MAP:
            unscored += 1
            continue
        rel = Path(v.path).resolve().relative_to(CORPUS).as_posix()
        pred.append((rel, v.line, PEER_MAP[v.rule_id]))
    stats = score(pred, truth)
    files = result.files_checked + len(result.skipped)
    secs = best_time(lambda: lint_paths([CORPUS]))
    stats["files"] = files
    stats["seconds"] = secs
    stats["files_per_s"] = files / secs
    stats["unscored"] = unscored
    covered = {r for rules in PEER_MAP.values() for r in rules}
    sub = {k for k in truth if k[2] in covered}
    stats["recall_on_covered"] = score(pred, sub)["recall"] if sub else 0.0
    return stats


def run_real(peer_ok: bool) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import real_corpus as rc

    if rc.missing():
        rc.materialise(Path(os.environ.get("IDEMTEST_CORPUS_MIRROR",
                                                              "/work/.mirror")))
        if rc.missing():
            print(f"\nreal corpus: {len(rc.missing())} file(s) missing; run "
                  "`python bench/real_corpus.py --mirror DIR` first")
            return
    n = len(rc.entries())
    repos = {str(e["repo"]) for e in rc.entries()}
    held = rc.heldout_keys()
    gold = rc.truth()
    labels = rc.labels()
    print(f"\nREAL corpus: {n} files from {len(repos)} repositories "
          f"({len(held)} files in {len({k.split('/', 1)[0] for k in held})} held-out "
          f"repositories); {len(gold)} labelled risks at medium+ in "
          f"{sum(1 for v in labels.values() if v['risks'])} files; "
          f"{sum(1 for v in labels.values() if not v['risks'])} files reviewed with no risk")
    t = time.perf_counter()
    found, skipped, crashes, reviewed = rc.review_each()
    secs = time.perf_counter() - t
    dev = set(labels) - held
    rows = [("idemtest review", "all", rc.score(found, gold)),
            ("idemtest review", "tuned", rc.score(found, gold, dev)),
            ("idemtest review", "held-out", rc.score(found, gold, held))]
    if peer_ok:
        from pipeline_lint.engine import lint_paths

        pred: list[tuple[str, int, str]] = []
        violations = []
        peer_crashes = 0
        for e in rc.entries():  # one file at a time: pipeline-lint raises on some files
            try:
                violations += lint_paths([rc.FILES / rc.key(e)]).violations
            except (Exception, RecursionError):
                peer_crashes += 1
        print(f"pipeline-lint raised on {peer_crashes} file(s) (counted as reviewed, no findings)")
        from idemtest.review.model import RULES

        for v in violations:
            # scored at medium+ like ours: a peer rule standing only for low classes
            # (DE006 missing retries = IDM103) is left out, not counted wrong
            if v.rule_id not in PEER_MAP or all(RULES[r].severity < 2 for r in PEER_MAP[v.rule_id]):
                continue
            k = Path(v.path).resolve().relative_to(rc.FILES.resolve()).as_posix()
            # a peer violation stands for any of our rules of its class on that line
            hit = [g for g in gold if g[0] == k and g[1] == v.line and g[2] in PEER_MAP[v.rule_id]]
            pred.append(hit[0] if hit else (k, v.line, v.rule_id))
        rows += [("pipeline-lint 0.1.0", "all", rc.score(pred, gold)),
                 ("pipeline-lint 0.1.0", "held-out", rc.score(pred, gold, held))]
    print(f"{'tool':<22} {'files':<9} {'precision':>9} {'recall':>7} {'found':>9} {'preds':>6}")
    for name, part, sc in rows:
        prec = f"{sc['precision']:>9.2f}" if sc["predictions"] else f"{'n/a':>9}"
        print(f"{name:<22} {part:<9} {prec} {sc['recall']:>7.2f} "
              f"{int(sc['found']):>4}/{int(sc['labels']):<4} {int(sc['predictions']):>6}")
    # Rounds: new repositories labelled before the rules were run on them, measured once
    # (first contact, recorded in labels.json) and only then read and fixed from.
    fc = rc.first_contact()
    if fc:
        print("\nper round (first contact = the one run of that day's rules on the round's "
              "files, before any fix made from them; now = these rules):")
        print(f"{'round':<6} {'files':>5} {'repos':>5}  {'first contact: precision':>24} "
              f"{'recall':>15}  {'now: precision':>14} {'recall':>7}")
    for rnd, rec in sorted(fc.items(), key=lambda kv: int(kv[0])):
        now = rc.score(found, gold, rc.round_keys(int(rnd)))
        first_p = f"{rec['precision']:.2f} ({rec['tp']}/{rec['predictions']})"
        first_r = f"{rec['recall']:.2f} ({rec['found']}/{rec['labels']})"
        print(f"{rnd:<6} {rec['files']:>5} {len(rec['repositories']):>5}  {first_p:>24} "
              f"{first_r:>15}  {now['precision']:>14.2f} {now['recall']:>7.2f}")
    if fc:
        pool = rc.pooled_first_contact(8)
        if pool["rounds"]:
            print(f"pooled first contact, rounds {pool['rounds'][0]}-{pool['rounds'][-1]} "
                  f"({pool['files']} files): precision {pool['tp'] / max(pool['predictions'], 1):.2f} "
                  f"({pool['tp']}/{pool['predictions']}), recall "
                  f"{pool['found'] / max(pool['labels'], 1):.2f} ({pool['found']}/{pool['labels']})")
            print("  per rule (found / false positives / missed):")
            for rule, c in sorted(pool["per_rule"].items(), key=lambda kv: -sum(kv[1].values())):
                p_ = f"{c['tp'] / (c['tp'] + c['fp']):.2f}" if c["tp"] + c["fp"] else "n/a"
                r_ = f"{c['tp'] / (c['tp'] + c['miss']):.2f}" if c["tp"] + c["miss"] else "n/a"
                print(f"  {rule:<7} {c['tp']:>3} / {c['fp']:>3} / {c['miss']:>3}   "
                      f"precision {p_:>4}  recall {r_:>4}")
    from idemtest.review.model import RULES, Severity

    def repo(k: str) -> str:
        return k.split("/", 1)[0]

    high = [f for f in found if f[2] in RULES and RULES[f[2]].severity == Severity.HIGH]
    failing = {repo(f[0]) for f in high}
    fp_only = {r for r in failing if not any(f in gold for f in high if repo(f[0]) == r)}
    deserved = {repo(g[0]) for g in gold if g[2] not in RULES or
                RULES[g[2]].severity == Severity.HIGH}
    print(f"--fail-on high (the default) fails {len(failing)}/{len(repos)} repositories, "
          f"{len(fp_only)} of them on false positives alone; {len(deserved)} have a labelled "
          "high risk")
    print(f"files reviewed: {reviewed}/{n} in {secs:.1f}s; crashes: {len(crashes)}")
    for c in crashes:
        print("  CRASH", c)
    # a syntax error (or a file too nested) skips the whole file though it carries a line
    whole_file = ("Python syntax error", "too deeply nested", "cannot tokenize SQL")

    def is_whole(ln: int | None, r: str) -> bool:
        return ln is None or r.startswith(whole_file)

    whole = sorted({(f, r) for f, ln, r in skipped if is_whole(ln, r)})
    parts = sorted({(f, ln, r) for f, ln, r in skipped if not is_whole(ln, r)})
    print(f"files skipped or left out: {len(whole)}; statements skipped: {len(parts)} "
          f"in {len({f for f, _, _ in parts})} file(s)")
    for f, r in whole:
        print(f"  skipped {f}: {r}")
    by_file: dict[str, list[tuple[int, str]]] = {}
    for f, ln, r in parts:
        by_file.setdefault(f, []).append((ln, r))
    for f, items in sorted(by_file.items()):
        lines = ", ".join(str(ln) for ln, _ in items[:8]) + (" ..." if len(items) > 8 else "")
        print(f"  skipped in {f} ({len(items)} statement(s), lines {lines}): {items[0][1][:90]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-install", action="store_true",
                    help="do not pip install pipeline-lint when it is missing")
    args = ap.parse_args()
    from idemtest.review.source import discover

    files, _, _ = discover([CORPUS])
    truth = expectations(files)
    print(f"corpus: {len(files)} files, {len(truth)} labelled findings, "
          f"{sum(1 for f in files if not expectations([f]))} clean files")
    ours = run_idemtest(files, truth)
    rows = [("idemtest review", ours)]
    if ensure_peer(not args.no_install):
        peer = run_peer(truth)
        if peer is not None:
            rows.append(("pipeline-lint 0.1.0", peer))
    else:
        print("pipeline-lint: NOT INSTALLED, no comparison (pip install pipeline-lint==0.1.0)")
    peer_ok = len(rows) > 1
    print()
    print(f"{'tool':<22} {'precision':>9} {'recall':>7} {'found':>9} {'preds':>6} "
          f"{'files':>6} {'files/s':>9}")
    for name, s in rows:
        print(f"{name:<22} {s['precision']:>9.2f} {s['recall']:>7.2f} "
              f"{int(s['found']):>4}/{len(truth):<4} {int(s['predictions']):>6} "
              f"{int(s['files']):>6} {s['files_per_s']:>9.1f}")
    if len(rows) > 1:
        peer = rows[1][1]
        print(f"\npipeline-lint recall on the rule classes it covers "
              f"({', '.join(sorted(PEER_MAP))} -> our classes): "
              f"{peer['recall_on_covered']:.2f}; {int(peer['unscored'])} violation(s) of "
              f"unmapped rules ({', '.join(sorted(PEER_UNSCORED))}) left out of its precision.")
        print("pipeline-lint does not read crontab files, Dagster/Prefect definitions or SQL "
              "in psycopg/duckdb/pandas calls; it reads .py and .sql only.")
    run_real(peer_ok)
    return 0


if __name__ == "__main__":
    sys.exit(main())
