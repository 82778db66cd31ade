"""`idemtest review` on the real corpus (public pipeline code nobody here wrote, labelled by
reading it): no crash, every skip explained, and precision/recall at medium+ no lower than
measured (bench/review_bench.py prints the figures; update the floors when they move)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARGIN = 0.03
# measured with bench/review_bench.py on this commit (see CHANGELOG)
FLOORS = {"all": (0.90, 0.94), "tuned": (0.90, 0.94), "held-out": (0.93, 1.00)}


def _rc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("real_corpus", ROOT / "bench" / "real_corpus.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["real_corpus"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def corpus() -> tuple[ModuleType, tuple]:
    rc = _rc()
    if rc.missing():
        mirror = Path(os.environ.get("IDEMTEST_CORPUS_MIRROR", "/work/.mirror"))
        if mirror.is_dir():
            rc.materialise(mirror)
    if rc.missing():
        pytest.skip(f"real corpus not fetched ({len(rc.missing())} files missing): run "
                    "`python bench/real_corpus.py --mirror DIR` with snapshots of the "
                    "repositories in tests/review/real_corpus/manifest.json")
    return rc, rc.review_each()


def test_manifest_and_labels_agree() -> None:
    rc = _rc()
    entries = rc.entries()
    labels = rc.labels()
    assert {rc.key(e) for e in entries} == set(labels)
    assert len(entries) >= 300 and len({e["repo"] for e in entries}) >= 10
    for e in entries:
        assert len(str(e["commit"])) == 40 and e["license"] and e["sha256"]
    from idemtest.review.model import RULES

    for k, v in labels.items():
        for r in v["risks"]:
            assert r["rule"] in RULES and r["line"] >= 1 and r["why"], (k, r)


def test_no_crash_and_every_skip_has_a_reason(corpus: tuple) -> None:
    _, (_, skipped, crashes, reviewed) = corpus
    assert crashes == []
    assert reviewed >= 300
    assert all(reason.strip() for _, _, reason in skipped)


def test_no_findings_in_test_code(corpus: tuple) -> None:
    from idemtest.review.source import is_test_code

    rc, (found, _, _, _) = corpus
    # the text too: a DAG file named like a test (and importing no test framework) is reviewed
    assert not [f for f in found if is_test_code(
        f[0].split("/", 1)[1], (rc.FILES / f[0]).read_text(encoding="utf-8", errors="replace"))]


@pytest.mark.parametrize("part", sorted(FLOORS))
def test_precision_and_recall_do_not_regress(corpus: tuple, part: str) -> None:
    rc, (found, _, _, _) = corpus
    held = rc.heldout_keys()
    only = {"all": None, "held-out": held, "tuned": set(rc.labels()) - held}[part]
    sc = rc.score(found, rc.truth(), only)
    precision, recall = FLOORS[part]
    assert sc["precision"] >= precision - MARGIN, sc
    assert sc["recall"] >= recall - MARGIN, sc
