"""Shared helpers for the review tests: the corpus and its `expect:` annotations."""

from __future__ import annotations

import re
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
_EXPECT = re.compile(r"(?:#|--)\s*expect:\s*(IDM\d+(?:\s*,\s*IDM\d+)*)")


def corpus_files() -> list[Path]:
    from idemtest.review.source import discover

    files, _, _ = discover([CORPUS])
    return files


def expected(path: Path) -> set[tuple[int, str]]:
    out: set[tuple[int, str]] = set()
    text = path.read_text(encoding="utf-8", errors="replace")
    for i, line in enumerate(text.splitlines(), start=1):
        m = _EXPECT.search(line)
        if m:
            out |= {(i, r.strip()) for r in m.group(1).split(",")}
    return out

# The corpora are reviewed, never run: other people's test files live in the real corpus.
collect_ignore = ["corpus", "real_corpus"]
