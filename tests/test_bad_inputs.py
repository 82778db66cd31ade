"""Routine mistakes, each a clear error naming the fix (never a traceback from
inside idemtest or Hypothesis). One row per mistake a user has made or will make;
a row that stops raising its message is a regression."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

import idemtest
from idemtest import Source, Spec, Target, daily, every, hourly, keys, monthly, windows
from idemtest.spec import parse_duration, parse_time

COLS = {"order_id": "BIGINT", "amount": "DOUBLE", "updated_at": "TIMESTAMP"}
DDL = """
CREATE SCHEMA src; CREATE SCHEMA analytics;
CREATE TABLE src.orders(order_id BIGINT, amount DOUBLE, updated_at TIMESTAMP);
CREATE TABLE analytics.orders(order_id BIGINT, amount DOUBLE, updated_at TIMESTAMP);
"""


def src(**kw: Any) -> Source:
    args: dict[str, Any] = dict(table="src.orders", columns=COLS, key="order_id", event_time="updated_at", max_rows=3)
    args.update(kw)
    return Source(**args)


def spec(**kw: Any) -> Spec:
    args: dict[str, Any] = dict(
        setup=DDL, sources=[src()], targets=[Target("analytics.orders", key="order_id")], schedule=hourly("2026-06-01", periods=2), concurrency="none"
    )
    args.update(kw)
    return Spec(**args)


# (id, a callable making the mistake, the error class, a regex of the message)
DECLARATIONS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    # Source
    ("source table with a space", lambda: src(table="src orders"), idemtest.SpecError, r"is not a plain table name"),
    ("source table not a string", lambda: src(table=42), idemtest.SpecError, r"is not a plain table name"),
    ("columns as a list", lambda: src(columns=["order_id", "updated_at"]), idemtest.SpecError, r"columns=.* must map each column to its SQL type"),
    ("columns empty", lambda: src(columns={}), idemtest.SpecError, r"declares no columns"),
    ("column type not a string", lambda: src(columns={**COLS, "x": int}), idemtest.SpecError, r"maps column names to SQL type names"),
    ("column type empty", lambda: src(columns={**COLS, "x": ""}), idemtest.SpecError, r"maps column names to SQL type names"),
    ("key as a number", lambda: src(key=42), idemtest.SpecError, r"key=42 must be a column name or a list"),
    ("key empty string", lambda: src(key=""), idemtest.SpecError, r"key='' names no column"),
    ("key list with a number", lambda: src(key=["order_id", 1]), idemtest.SpecError, r"must be a column name or a list"),
    ("key not a column", lambda: src(key="id"), idemtest.SpecError, r"key column 'id' is not among its columns"),
    ("key missing", lambda: src(key=[]), idemtest.SpecError, r"needs key="),
    ("event_time not a column", lambda: src(event_time="ts"), idemtest.SpecError, r"event_time column 'ts' is not among"),
    ("event_time not a string", lambda: src(event_time=7), idemtest.SpecError, r"event_time=7 must be a non-empty string"),
    ("event_time missing", lambda: src(event_time=None), idemtest.SpecError, r"needs event_time= .* declares snapshot=True"),
    ("event_time not a time", lambda: src(event_time="amount"), idemtest.SpecError, r"must be a TIMESTAMP or DATE column"),
    ("updates not a bool", lambda: src(updates="yes"), idemtest.SpecError, r"updates='yes' must be True or False"),
    ("append_only not a bool", lambda: src(append_only=1), idemtest.SpecError, r"append_only=1 must be True or False"),
    ("max_rows as text", lambda: src(max_rows="5"), idemtest.SpecError, r"max_rows='5' must be a whole number"),
    ("max_rows zero", lambda: src(max_rows=0), idemtest.SpecError, r"max_rows=0 must be between 1 and 10000"),
    ("max_rows too many", lambda: src(max_rows=100_000), idemtest.SpecError, r"must be between 1 and 10000"),
    ("max_rows a bool", lambda: src(max_rows=True), idemtest.SpecError, r"must be a whole number"),
    ("values a number", lambda: src(values=5), idemtest.SpecError, r"values=5 must map column names to Hypothesis strategies"),
    ("values a plain value", lambda: src(values={"amount": 5}), idemtest.SpecError, r"values\['amount'\]=5 is not a Hypothesis strategy; write values=\{'amount': st.just\(5\)\}"),
    ("values of an unknown column", lambda: src(values={"colour": st.just("red")}), idemtest.SpecError, r"values= names column 'colour'"),
    ("landing unknown format", lambda: src(landing="xml"), idemtest.SpecError, r"landing='xml'; use 'csv', 'parquet' or 'jsonl'"),
    # Target
    ("target table invalid", lambda: Target("analytics.orders;drop"), idemtest.SpecError, r"is not a plain table name"),
    ("target key a number", lambda: Target("analytics.orders", key=7), idemtest.SpecError, r"key=7 must be a column name"),
    ("target ignore a number", lambda: Target("analytics.orders", ignore=3), idemtest.SpecError, r"ignore=3 must be a column name"),
    ("target key ignored", lambda: Target("analytics.orders", key="order_id", ignore=["order_id"]), idemtest.SpecError, r"a key cannot be ignored"),
    ("target atomic not a bool", lambda: Target("analytics.orders", key="order_id", atomic="yes"), idemtest.SpecError, r"atomic='yes' must be True or False"),
    ("target atomic without partition", lambda: Target("analytics.orders", atomic=True), idemtest.SpecError, r"needs partition_by="),
    ("target partition_by a number", lambda: Target("analytics.orders", key="order_id", partition_by=1), idemtest.SpecError, r"partition_by=1 must be a non-empty string"),
    ("target query empty", lambda: Target("current", query=""), idemtest.SpecError, r"query='' must be a non-empty string"),
    # Spec
    ("sources a single Source", lambda: spec(sources=src()), idemtest.SpecError, r"sources=Source\(...\) is a single Source; pass a list: sources=\[Source\(...\)\]"),
    ("targets a single Target", lambda: spec(targets=Target("analytics.orders")), idemtest.SpecError, r"pass a list: targets=\[Target\(...\)\]"),
    ("sources a string", lambda: spec(sources="src.orders"), idemtest.SpecError, r"sources='src.orders' must be a list of idemtest.Source"),
    ("sources holding a dict", lambda: spec(sources=[{"table": "src.orders"}]), idemtest.SpecError, r"sources= holds .*; each must be an idemtest.Source"),
    ("targets holding a string", lambda: spec(targets=["analytics.orders"]), idemtest.SpecError, r"targets= holds 'analytics.orders'; each must be an idemtest.Target"),
    ("no targets", lambda: spec(targets=[]), idemtest.SpecError, r"needs at least one Target"),
    ("source declared twice", lambda: spec(sources=[src(), src()]), idemtest.SpecError, r"declared twice"),
    ("target declared twice", lambda: spec(targets=[Target("analytics.orders"), Target("analytics.orders")]), idemtest.SpecError, r"target 'analytics.orders' is declared twice"),
    ("a table both source and target", lambda: spec(targets=[Target("src.orders")]), idemtest.SpecError, r"both as a source and as a target"),
    ("schedule a string", lambda: spec(schedule="hourly"), idemtest.SpecError, r"build one with idemtest.hourly"),
    ("setup a number", lambda: spec(setup=42), idemtest.SpecError, r"setup=42 must be SQL text, a path to a .sql file, or a callable"),
    ("max_lateness negative", lambda: spec(max_lateness=-7200), idemtest.SpecError, r"data cannot arrive before it happens"),
    ("max_lateness gibberish", lambda: spec(max_lateness="soon"), idemtest.SpecError, r"max_lateness='soon' is not a duration"),
    ("max_lateness nan", lambda: spec(max_lateness=float("nan")), idemtest.SpecError, r"is not a duration"),
    ("max_lateness a bool", lambda: spec(max_lateness=True), idemtest.SpecError, r"is not a duration"),
    ("timeout zero", lambda: spec(timeout=0), idemtest.SpecError, r"a run needs a positive time limit"),
    ("timeout negative", lambda: spec(timeout="-5s"), idemtest.SpecError, r"is not a duration|positive time limit"),
    ("retry_delay negative", lambda: spec(retry_delay=timedelta(minutes=-5)), idemtest.SpecError, r"a retry cannot run before the failure"),
    ("retries too many", lambda: spec(retries=99), idemtest.SpecError, r"retries=99 must be a whole number from 0 to 10"),
    ("retries as text", lambda: spec(retries="2"), idemtest.SpecError, r"retries='2' must be a whole number"),
    ("oracle unknown", lambda: spec(oracle="latest"), idemtest.SpecError, r"oracle='latest'; use 'all-arrived'"),
    ("concurrency unknown", lambda: spec(concurrency="always"), idemtest.SpecError, r"concurrency='always'; use 'none', 'partitions'"),
    ("dialect unknown", lambda: spec(dialect="mysql"), idemtest.SpecError, r"dialect='mysql'; use 'duckdb', 'postgres'"),
    ("exercise unknown", lambda: spec(exercise=["crash", "meteor"]), idemtest.SpecError, r"exercise=\['meteor'\] names unknown perturbations"),
    ("exercise a number", lambda: spec(exercise=3), idemtest.SpecError, r"exercise=3 must be a list of perturbation names"),
    ("name empty", lambda: spec(name=""), idemtest.SpecError, r"name='' must be a non-empty string"),
    ("too many windows from lateness", lambda: spec(schedule=every("2026-06-01", "1m", 10), max_lateness="30d"), idemtest.SpecError, r"more than the 500 a check can run"),
    # schedules and values
    ("hourly with 100000 periods", lambda: hourly("2026-06-01", 100_000), idemtest.SpecError, r"periods=100000: more than the 500 windows"),
    ("hourly with zero periods", lambda: hourly("2026-06-01", 0), idemtest.SpecError, r"a whole number of windows >= 1"),
    ("daily with periods as text", lambda: daily("2026-06-01", "5"), idemtest.SpecError, r"periods='5'"),
    ("every with a zero step", lambda: every("2026-06-01", "0s", 3), idemtest.SpecError, r"windows need a positive length"),
    ("every with a bad step", lambda: every("2026-06-01", "hourly", 3), idemtest.SpecError, r"step='hourly' is not a duration"),
    ("start not a time", lambda: hourly("June 1st", 3), idemtest.SpecError, r"start='June 1st' is not a time"),
    ("windows ending before they start", lambda: windows([("2026-06-02", "2026-06-01")]), idemtest.SpecError, r"ends before it starts"),
    ("windows out of order", lambda: windows([("2026-06-02", "2026-06-03"), ("2026-06-01", "2026-06-02")]), idemtest.SpecError, r"listed in time order"),
    ("windows empty", lambda: windows([]), idemtest.SpecError, r"at least one window"),
    ("duration unit unknown", lambda: parse_duration("5 fortnights"), idemtest.SpecError, r"is not a duration"),
    ("time of a wrong type", lambda: parse_time(3.5), idemtest.SpecError, r"is not a time"),
    # keyless, snapshot and file sources, key shapes (issue 13)
    ("key not given", lambda: Source("src.orders", COLS, event_time="updated_at"), idemtest.SpecError, r"needs key= .*declares key=None and its rows are compared as a multiset"),
    ("snapshot with an event_time", lambda: src(snapshot=True), idemtest.SpecError, r"snapshot=True has no event time .* drop event_time="),
    ("snapshot and append_only", lambda: src(event_time=None, snapshot=True, append_only=True), idemtest.SpecError, r"snapshot=True replaces the whole content .* declare one of them"),
    ("snapshot not a bool", lambda: src(event_time=None, snapshot="yes"), idemtest.SpecError, r"snapshot='yes' must be True or False"),
    ("values on the event_time column", lambda: src(values={"updated_at": st.just(None)}), idemtest.SpecError, r"names the event_time column 'updated_at'; its values come from the schedule"),
    ("key shape on a column that is no key", lambda: src(values={"amount": keys.autoincrement()}), idemtest.SpecError, r"shapes keys, but 'amount' is not a key column"),
    ("concat_collisions on a one-column key", lambda: src(values={"order_id": keys.concat_collisions()}), idemtest.SpecError, r"needs a composite key"),
    ("string key shape on an integer key", lambda: src(values={"order_id": keys.with_separators()}), idemtest.SpecError, r"keys.with_separators\(\) makes string keys; declare the key column as VARCHAR, not 'BIGINT'"),
    ("path absolute", lambda: src(path="/data/orders.csv"), idemtest.SpecError, r"path='/data/orders.csv' must be relative to the sandbox's folder"),
    ("path climbing out", lambda: src(path="../orders.csv"), idemtest.SpecError, r"without '..'"),
    ("path of an unknown format", lambda: src(path="orders_{partition}.xlsx"), idemtest.SpecError, r"must end in .csv, .parquet or .jsonl"),
    ("path with an unknown placeholder", lambda: src(path="orders_{ds}.csv"), idemtest.SpecError, r"uses \{ds\}; the only placeholder is \{partition\}"),
    ("path and landing disagree", lambda: src(path="orders.csv", landing="parquet"), idemtest.SpecError, r"landing='parquet' but path='orders.csv' names a csv file"),
    ("snapshot split by partition", lambda: src(event_time=None, snapshot=True, path="o_{partition}.csv"), idemtest.SpecError, r"a snapshot source has no event time to split by"),
    # file targets and references
    ("target file and query", lambda: Target("out", query="SELECT 1", file="out.csv"), idemtest.SpecError, r"gives both query= and file="),
    ("target file of an unknown format", lambda: Target("out", file="out/x.txt"), idemtest.SpecError, r"file='out/x.txt' must end in .csv, .parquet or .jsonl"),
    ("target file absolute", lambda: Target("out", file="/tmp/x.csv"), idemtest.SpecError, r"must be relative to the sandbox's folder"),
    ("target expected empty", lambda: Target("analytics.orders", expected=""), idemtest.SpecError, r"expected='' must be a non-empty string"),
    # run delay
    ("run_delay negative", lambda: spec(run_delay="-1h"), idemtest.SpecError, r"run_delay=.*is not a duration|a run cannot start before its window closes"),
    ("run_delay negative timedelta", lambda: spec(run_delay=timedelta(hours=-1)), idemtest.SpecError, r"a run cannot start before its window closes"),
    ("daily at a bad time", lambda: daily("2026-06-01", 3, at="2am"), idemtest.SpecError, r"daily\(at='2am'\): the time of day a run starts is written 'HH:MM'"),
    ("daily at 25:00", lambda: daily("2026-06-01", 3, at="25:00"), idemtest.SpecError, r"written 'HH:MM'"),
    ("monthly on the 31st", lambda: monthly("2026-01-01", 3, day=31), idemtest.SpecError, r"monthly\(day=31\): .* from 1 to 28"),
    ("monthly with zero periods", lambda: monthly("2026-01-01", 0), idemtest.SpecError, r"periods=0"),
    # the decorator
    ("check without a Spec", lambda: idemtest.check("spec"), idemtest.SpecError, r"@idemtest.check expects an idemtest.Spec"),
    ("check with examples zero", lambda: idemtest.check(spec(), examples=0), idemtest.SpecError, r"examples=0 must be a whole number >= 1"),
    ("check of a function without parameters", lambda: idemtest.check(spec())(lambda: None), idemtest.SpecError, r"must take the run context as its first parameter"),
]


@pytest.mark.parametrize(("make", "error", "message"), [row[1:] for row in DECLARATIONS], ids=[row[0] for row in DECLARATIONS])
def test_a_bad_declaration_names_the_fix(make: Callable[[], Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def test_spec_errors_are_value_errors_and_idemtest_errors() -> None:
    with pytest.raises(ValueError):
        src(key=42)
    assert issubclass(idemtest.SpecError, idemtest.ConfigurationError)


def ok(run: idemtest.RunContext) -> None:
    run.conn.execute("BEGIN")
    run.conn.execute("DELETE FROM analytics.orders")
    run.conn.execute("INSERT INTO analytics.orders SELECT * FROM src.orders")
    run.conn.execute("COMMIT")


def drops_its_target(run: idemtest.RunContext) -> None:
    run.conn.execute("DROP TABLE IF EXISTS analytics.orders")


def two_args(run: idemtest.RunContext, conn: Any) -> None:
    pass


# (id, keyword arguments of verify, the error class, a regex of the message)
RUNS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("examples zero", dict(examples=0), idemtest.SpecError, r"examples=0: the number of generated scenarios must be a whole number >= 1"),
    ("examples negative", dict(examples=-5), idemtest.SpecError, r"examples=-5"),
    ("examples as text", dict(examples="5"), idemtest.SpecError, r"examples='5'"),
    ("db empty", dict(db=""), idemtest.BackendError, r"--idem-db='' is not a known sandbox"),
    ("db unknown, password hidden", dict(db="oracle://scott:tiger@db/x"), idemtest.BackendError, r"oracle://scott:\*\*\*@db/x"),
    ("load with two parameters", dict(load=two_args), idemtest.SpecError, r"has the wrong signature: idemtest calls it with one argument"),
    ("load not callable", dict(load="ok"), idemtest.SpecError, r"the load must be a function taking the run context"),
    ("load drops its target", dict(load=drops_its_target), idemtest.LoadError, r"target analytics.orders cannot be read after the clean run .*the load must leave its targets in place"),
    ("expected query broken", dict(spec=spec(targets=[Target("analytics.orders", key="order_id", expected="SELECT * FROM src.no_such_table")])), idemtest.SpecError, r"Target\('analytics.orders'\): the expected= query fails on the sandbox after setup: .*no_such_table"),
    ("expected query with a column the target lacks", dict(spec=spec(targets=[Target("analytics.orders", key="order_id", expected="SELECT order_id, amount AS amt FROM src.orders")])), idemtest.SpecError, r"the expected= query returns column\(s\) \['amt'\] that the target does not have"),
    ("setup file missing", dict(spec=spec(setup="no such schema.sql")), idemtest.SpecError, r"setup='no such schema.sql': no such file"),
    ("setup SQL broken", dict(spec=spec(setup="CREAT TABLE x(a INT)")), idemtest.SetupError, r"setup SQL failed on duckdb"),
    ("setup callable raising", dict(spec=spec(setup=lambda conn: 1 / 0)), idemtest.SetupError, r"setup callable .* raised ZeroDivisionError"),
    ("replay file missing", dict(replay="nowhere.json"), idemtest.ReplayError, r"replay file 'nowhere.json' does not exist"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), [row[1:] for row in RUNS], ids=[row[0] for row in RUNS])
def test_a_bad_run_names_the_fix(kwargs: dict[str, Any], error: type[Exception], message: str, tmp_path: Path) -> None:
    args: dict[str, Any] = dict(spec=spec(), load=ok, examples=3, failures_dir=tmp_path, shrink_seconds=0)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        idemtest.verify(args.pop("spec"), args.pop("load"), **args)


def test_a_setup_path_with_a_space_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "my schema.sql").write_text(DDL)
    idemtest.verify(spec(setup="my schema.sql"), ok, examples=2, failures_dir=tmp_path, base_dir=tmp_path)


def _saved(tmp_path: Path, mutate: Callable[[dict[str, Any]], None]) -> str:
    payload: dict[str, Any] = {
        "idemtest": idemtest.__version__,
        "test": None,
        "spec": None,
        "db": "duckdb",
        "property": "P1",
        "scenario": {
            "data": {"src.orders": [{"arrival": "2026-06-01T00:10:00", "values": {"order_id": 1, "amount": 1.0, "updated_at": {"$datetime": "2026-06-01T00:10:00"}}}]},
            "steps": [{"window": 0, "at": "2026-06-01T01:00:00", "tag": "nominal"}, {"window": 1, "at": "2026-06-01T02:00:00", "tag": "nominal"}],
        },
    }
    mutate(payload)
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(payload))
    return str(path)


REPLAYS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("window out of range", lambda p: p["scenario"]["steps"].append({"window": 99, "at": "2026-06-01T03:00:00"}), r"a step runs window 99, but this spec has windows 0..1"),
    ("fault at statement 0", lambda p: p["scenario"]["steps"][0].update(faults=[{"at": 0, "when": "after"}]), r"is not a crash 'before' or 'after' statement k >= 1"),
    ("fault of an unknown kind", lambda p: p["scenario"]["steps"][0].update(faults=[{"at": 1, "when": "during"}]), r"is not a crash 'before' or 'after'"),
    ("a source the spec lacks", lambda p: p["scenario"]["data"].update({"src.other": []}), r"fills source 'src.other', which this spec does not declare"),
    ("a row with other columns", lambda p: p["scenario"]["data"]["src.orders"][0]["values"].pop("amount"), r"a saved row of src.orders has columns"),
    ("a time of the wrong type", lambda p: p["scenario"]["steps"][0].update(at=12), r"the saved scenario is malformed"),
    ("steps missing", lambda p: p["scenario"].pop("steps"), r"the saved scenario is malformed"),
    ("not a scenario", lambda p: p.pop("scenario"), r"has no 'scenario'"),
    ("a value of the wrong type", lambda p: p["scenario"]["data"]["src.orders"][0]["values"].update(order_id="abc"), r"the saved source rows cannot be loaded into the sandbox \(ConversionException.*a value does not fit its column's type"),
    ("a timestamp that is not one", lambda p: p["scenario"]["data"]["src.orders"][0]["values"].update(updated_at="yesterday"), r"the saved source rows cannot be loaded into the sandbox"),
    ("a value of an unknown tag", lambda p: p["scenario"]["data"]["src.orders"][0]["values"].update(amount={"$datetime": "zzz"}), r"is not JSON written by idemtest"),
    ("window a string", lambda p: p["scenario"]["steps"][0].update(window="a"), r"the saved scenario is malformed \(ValueError"),
    ("window negative", lambda p: p["scenario"]["steps"][0].update(window=-1), r"a step runs window -1, but this spec has windows 0..1"),
    ("faults a string", lambda p: p["scenario"]["steps"][0].update(faults="x"), r"the saved scenario is malformed"),
    ("choices of strings", lambda p: p["scenario"]["steps"].append({"parallel": [{"window": 0, "at": "2026-06-01T01:00:00"}], "choices": ["x"]}), r"the saved scenario is malformed"),
    ("steps an object", lambda p: p["scenario"].update(steps={}), r"the saved scenario is malformed \(TypeError: 'data' must be an object and 'steps' a list"),
    ("data a list", lambda p: p["scenario"].update(data=[]), r"the saved scenario is malformed"),
    ("no steps", lambda p: p["scenario"].update(steps=[]), r"the saved scenario has no steps, so there is nothing to replay"),
    ("arrival a number", lambda p: p["scenario"]["data"]["src.orders"][0].update(arrival=5), r"the saved scenario is malformed"),
    ("saved for another spec", lambda p: p.update(spec="0123456789abcdef"), r"was saved for a different spec \(fingerprint 0123456789abcdef"),
]


@pytest.mark.parametrize(("mutate", "message"), [row[1:] for row in REPLAYS], ids=[row[0] for row in REPLAYS])
def test_a_bad_replay_file_names_the_problem(mutate: Callable[[dict[str, Any]], None], message: str, tmp_path: Path) -> None:
    path = _saved(tmp_path, mutate)
    with pytest.raises(idemtest.ReplayError, match=message):
        idemtest.verify(spec(), ok, replay=path, failures_dir=tmp_path)


@pytest.mark.parametrize("content", [b"\x00\x01\xff binary", b"{not json", b"[1, 2, 3]", b""], ids=["binary", "corrupt", "a list", "empty"])
def test_a_replay_file_that_is_not_one(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(idemtest.ReplayError, match=r"replay file .*(is not JSON written by idemtest|has no 'scenario')"):
        idemtest.verify(spec(), ok, replay=str(path), failures_dir=tmp_path)


# (id, command-line options of a checking run, a regex of the message); pytest must
# stop with a usage error naming the fix, never INTERNALERROR or a traceback
OPTIONS: list[tuple[str, list[str], str]] = [
    ("--idem-examples 0", ["--idem-examples", "0"], r"--idem-examples / idem_examples=0: give at least 1 scenario per check"),
    ("--idem-examples -5", ["--idem-examples", "-5"], r"--idem-examples / idem_examples=-5: give at least 1 scenario per check"),
    ("--idem-examples many", ["--idem-examples", "many"], r"idem_examples='many' is not a whole number"),
    ("--idem-db ''", ["--idem-db", ""], r"--idem-db='' is not a known sandbox"),
    ("--idem-db of an unknown kind, password hidden", ["--idem-db", "oracle://scott:tiger@db/x"], r"--idem-db='oracle://scott:\*\*\*@db/x' is not a known sandbox"),
    ("--idem-shrink-seconds negative", ["--idem-shrink-seconds", "-1"], r"give 0 \(report the first failure as found\) or more seconds"),
    ("--idem-shrink-seconds a word", ["--idem-shrink-seconds", "soon"], r"'soon' is not a number of seconds"),
    ("--idem-replay missing", ["--idem-replay", "missing.json"], r"--idem-replay: replay file 'missing.json' does not exist"),
    ("--idem-replay a folder", ["--idem-replay", "."], r"--idem-replay: replay file '.' is a folder; pass one .json file from it"),
]


@pytest.mark.parametrize("options, message", [row[1:] for row in OPTIONS], ids=[row[0] for row in OPTIONS])
def test_a_bad_option_is_a_usage_error(pytester: pytest.Pytester, options: list[str], message: str) -> None:
    import re

    pytester.makepyfile(test_pipe="def test_x():\n    pass\n")
    result = pytester.runpytest("--idempotency", *options)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert re.search(message, out), out
    assert "INTERNALERROR" not in out and "Traceback" not in out and "tiger" not in out


def test_exercise_names_one_perturbation_as_a_string() -> None:
    # exercise='crash' was read letter by letter ('c', 'r', ...) and refused
    assert spec(exercise="crash").exercise == frozenset({"crash"})


@pytest.mark.parametrize("db", ["host=127.0.0.1 port=5432 user=postgres dbname=postgres", "postgresql://postgres@127.0.0.1/postgres", "  HOST=db dbname=x"])
def test_a_server_dsn_in_either_libpq_form_is_accepted(db: str) -> None:
    # idemtest's own messages suggest the key=value form: it must be taken (no connection is made here)
    from idemtest.sandbox import parse_db

    assert parse_db(db).kind == "postgres"


def test_the_table_is_long_enough() -> None:
    # the reliability issue asks for >= 60 rows of routine mistakes
    assert len(DECLARATIONS) + len(RUNS) + len(REPLAYS) + len(OPTIONS) + 4 >= 60
