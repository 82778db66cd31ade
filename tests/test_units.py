"""Pure helpers, by parametrized unit tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from idemtest import Source, hourly
from idemtest.engine.diff import compare, duplicate_keys, lost_rows
from idemtest.engine.model import Dataset, ParallelStep, RunStep, Scenario, Version
from idemtest.instrument import Fault
from idemtest.spec import daily, parse_duration, windows


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2h", 7200), ("30m", 1800), ("1h30m", 5400), ("45s", 45), ("1d", 86400), ("500ms", 0.5), (90, 90), (timedelta(minutes=2), 120)],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds  # type: ignore[arg-type]


def test_hourly_windows_and_tail() -> None:
    s = hourly("2026-06-01", periods=3)
    assert [(w.start.hour, w.end.hour) for w in s.windows] == [(0, 1), (1, 2), (2, 3)]
    tail = s.with_tail(timedelta(minutes=90))
    assert len(tail) == 5 and tail[-1].extra and tail[-1].end == datetime(2026, 6, 1, 5)
    assert s.with_tail(timedelta(0)) == s.windows


@pytest.mark.parametrize(
    ("schedule", "partition"),
    [(daily("2026-06-01", 2), "2026-06-01"), (hourly("2026-06-01T03:00", 1), "2026-06-01T03:00")],
)
def test_partition_labels(schedule: object, partition: str) -> None:
    assert schedule.windows[0].partition == partition  # type: ignore[attr-defined]


def test_explicit_windows_must_be_ordered() -> None:
    from idemtest import SpecError

    with pytest.raises(SpecError, match="time order"):
        windows([("2026-06-02", "2026-06-03"), ("2026-06-01", "2026-06-02")])


COLS = ["id", "v"]


@pytest.mark.parametrize(
    ("expected", "actual", "counts"),
    [
        ([(1, "a")], [(1, "a")], {"missing": 0, "extra": 0, "changed": 0, "duplicate_keys": 0}),
        ([(1, "a")], [(1, "a"), (1, "a")], {"missing": 0, "extra": 1, "changed": 0, "duplicate_keys": 1}),
        ([(1, "a"), (1, "a")], [(1, "a"), (1, "a")], {"missing": 0, "extra": 0, "changed": 0, "duplicate_keys": 0}),
        ([(1, "a"), (2, "b")], [(1, "a")], {"missing": 1, "extra": 0, "changed": 0, "duplicate_keys": 0}),
        ([(1, "a")], [(1, "b")], {"missing": 0, "extra": 0, "changed": 1, "duplicate_keys": 0}),
        ([(1, 0.1 + 0.2)], [(1, 0.3)], {"missing": 0, "extra": 0, "changed": 0, "duplicate_keys": 0}),
        ([(1, Decimal("1.50"))], [(1, Decimal("1.5"))], {"missing": 0, "extra": 0, "changed": 0, "duplicate_keys": 0}),
    ],
)
def test_compare(expected: list[tuple[object, ...]], actual: list[tuple[object, ...]], counts: dict[str, int]) -> None:
    assert compare("t", ["id"], (COLS, expected), (COLS, actual)).counts() == counts


def test_compare_names_the_changed_columns_and_renders_keys_first() -> None:
    d = compare("t", ["id"], (["v", "id", "loaded_at"], [(1, 7, 10)]), (["v", "id", "loaded_at"], [(1, 7, 11)]))
    assert d.columns_differ == ["loaded_at"]
    assert "id=7: loaded_at: 10 → 11" in d.render()


def test_keyless_compare_is_a_multiset() -> None:
    d = compare("t", [], (COLS, [(1, "a"), (1, "a")]), (COLS, [(1, "a")]))
    assert d.missing == [(1, "a")] and not d.changed


def test_duplicate_and_lost_rows() -> None:
    assert duplicate_keys("t", ["id"], (COLS, [(1, "a"), (1, "b"), (2, "c")])).duplicate_keys == [((1, None), 2)]
    before = (COLS, [(1, "a"), (2, "b")])
    assert lost_rows("t", ["id"], before, (COLS, [(1, "z")])).missing == [(2, "b")]
    assert lost_rows("t", [], before, (COLS, [])).missing == []  # keyless targets are not judged for P3


SRC = Source("s.t", columns={"id": "BIGINT", "v": "VARCHAR", "ts": "TIMESTAMP"}, key="id", event_time="ts")
T0 = datetime(2026, 6, 1)


def test_visible_shows_latest_arrived_version() -> None:
    data = Dataset({"s.t": [Version({"id": 1, "v": "old", "ts": T0}, T0), Version({"id": 1, "v": "new", "ts": T0 + timedelta(minutes=5)}, T0 + timedelta(hours=2))]})
    assert data.visible(SRC, T0 + timedelta(hours=1)) == [{"id": 1, "v": "old", "ts": T0}]
    assert data.visible(SRC, None)[0]["v"] == "new"
    assert data.late_rows(hourly("2026-06-01", 1) and _spec()) == 1


def _spec() -> object:
    from idemtest import Spec, Target

    return Spec(sources=[SRC], targets=[Target("x.y")], schedule=hourly("2026-06-01", 2))


def test_scenario_json_round_trip() -> None:
    data = Dataset({"s.t": [Version({"id": 1, "v": "x", "ts": T0, "d": date(2026, 1, 2), "m": Decimal("1.20")}, T0)]})
    steps = [
        RunStep(0, T0 + timedelta(hours=1), (Fault(3, "after"), Fault(1, "before")), "nominal"),
        ParallelStep((RunStep(1, T0, (), "duplicate"), RunStep(0, T0, (), "backfill")), (1, 0, 1)),
    ]
    sc = Scenario(data, steps)
    back = Scenario.from_json(sc.to_json())
    assert back.to_json() == sc.to_json()
    assert back.data.sources["s.t"][0].values["m"] == Decimal("1.20")
    assert back.steps == steps


def test_generated_versions_never_land_after_the_last_run() -> None:
    from hypothesis import given, settings

    from idemtest import Spec, Target, daily
    from idemtest.engine.generate import source_strategy

    src = Source("s.c", columns={"id": "BIGINT", "d": "DATE"}, key="id", event_time="d", max_rows=12)
    spec = Spec(sources=[src], targets=[Target("x.y")], schedule=daily("2026-06-01", 3), max_lateness="6h")
    last_run = spec.all_windows[-1].end

    @settings(max_examples=200, deadline=None, database=None)
    @given(source_strategy(spec, src))
    def check(versions: list[Version]) -> None:
        assert all(v.arrival <= last_run for v in versions)
        assert all(datetime.combine(v.values["d"], datetime.min.time()) < spec.schedule.end for v in versions)

    check()
