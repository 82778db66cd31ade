"""The `idemtest review` command: formats, exit codes, --fail-on, suppression, skipping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from idemtest.review import ReviewOptions, main, review_paths
from idemtest.review.model import RULES

from .conftest import CORPUS

RISKY_SQL = "INSERT INTO analytics.orders SELECT * FROM raw.orders;\n"
MEDIUM_SQL = (
    "INSERT INTO t SELECT * FROM s WHERE updated_at >= (SELECT max(updated_at) FROM t);\n"
)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def test_table_output_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "load.sql", RISKY_SQL)
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert [c.strip() for c in header.split("|")] == ["file:line", "issue", "risk", "fix"]
    assert f"{tmp_path.name}/load.sql:1" in out
    assert "IDM201" in out and "high" in out
    # the fix column wraps: read it back as one text
    fix = " ".join(line.split(" | ")[3].strip() for line in out.splitlines()[2:]
                   if line.count(" | ") == 3)
    assert "a crash after statement k then retry (P1/P2)" in fix


def test_table_fits_100_columns(capsys: pytest.CaptureFixture[str]) -> None:
    main([str(CORPUS), "--fail-on", "none"])
    out = capsys.readouterr().out
    assert len(out.splitlines()) > 50
    assert max(len(line) for line in out.splitlines()) <= 100


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "load.sql", RISKY_SQL)
    write(tmp_path, "bad.sql", b"\xff\xfe\xfa not utf8 \x80")
    assert main([str(tmp_path), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    [f] = doc["findings"]
    assert f["rule"] == "IDM201" and f["line"] == 1 and f["severity"] == "high"
    assert f["fix"] and f["risk"] and f["scenario"]
    assert doc["skipped"][0]["file"].endswith("bad.sql")
    assert "UTF-8" in doc["skipped"][0]["reason"]
    assert doc["summary"]["files_reviewed"] == 1


def test_sarif_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "load.sql", RISKY_SQL)
    out = tmp_path / "report.sarif"
    assert main([str(tmp_path / "load.sql"), "--format", "sarif", "--output", str(out)]) == 1
    doc = json.loads(out.read_text())
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    [run] = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == set(RULES)
    for r in rules:
        assert r["shortDescription"]["text"] and r["help"]["text"]
    [res] = run["results"]
    assert res["ruleId"] == "IDM201" and res["level"] == "error"
    assert res["message"]["text"]
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "load.sql", "uriBaseId": "SRCROOT"}
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == tmp_path.resolve().as_uri() + "/"
    assert loc["region"]["startLine"] == 1
    assert rules[res["ruleIndex"]]["id"] == "IDM201"


@pytest.mark.parametrize("given", ["repo/pipelines/sql", "repo/pipelines/sql/load.sql",
                                   "repo/pipelines"])
def test_sarif_paths_are_relative_to_the_repository_root(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    # Code scanning maps results against the repository root, whatever folder was reviewed.
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "pipelines" / "sql").mkdir(parents=True)
    write(tmp_path / "repo" / "pipelines" / "sql", "load.sql", RISKY_SQL)
    monkeypatch.chdir(tmp_path / "repo" / "pipelines")
    out = tmp_path / "r.sarif"
    assert main([str(tmp_path / given), "--format", "sarif", "-o", str(out)]) == 1
    run = json.loads(out.read_text())["runs"][0]
    [res] = run["results"]
    assert res["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "pipelines/sql/load.sql", "uriBaseId": "SRCROOT"}
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == (tmp_path / "repo").as_uri() + "/"


@pytest.mark.parametrize(
    ("sql", "fail_on", "code"),
    [
        (RISKY_SQL, None, 1),
        (RISKY_SQL, "high", 1),
        (RISKY_SQL, "none", 0),
        (MEDIUM_SQL, None, 0),
        (MEDIUM_SQL, "high", 0),
        (MEDIUM_SQL, "medium", 1),
        (MEDIUM_SQL, "low", 1),
        ("SELECT 1;\n", "low", 0),
    ],
)
def test_exit_codes(tmp_path: Path, sql: str, fail_on: str | None, code: int,
                    capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "x.sql", sql)
    argv = [str(tmp_path)] + (["--fail-on", fail_on] if fail_on else [])
    assert main(argv) == code


@pytest.mark.parametrize(
    "argv",
    [[], ["--format", "xml", "x"], ["--fail-on", "critical", "x"], ["--dialect", "nosuch", "."],
     ["--bogus"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2


def test_list_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-rules"]) == 0
    out = capsys.readouterr().out
    for rid in RULES:
        assert rid in out


def test_missing_path_is_reported_not_crashed(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 0
    assert "no such file" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("blob.py", b"\x00\x01\x02binary\x00", "binary"),
        ("latin.sql", "SELECT 'caf\xe9' FROM t;".encode("latin-1"), "UTF-8"),
        ("huge.sql", b"-- x\n" * (2 * 1024 * 1024 // 5 + 10), "too large"),
        ("bad.py", b"def f(:\n", "syntax error"),
        ("notes.txt", b"hello", "unsupported file type"),
    ],
)
def test_unreadable_inputs_are_skipped(tmp_path: Path, name: str, text: bytes,
                                       reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    p = write(tmp_path, name, text)
    result = review_paths([p])
    assert result.findings == []
    [skipped] = result.skipped
    assert reason in skipped.reason
    assert main([str(p)]) == 0
    assert "Skipped:" in capsys.readouterr().out


def test_python_suppression_same_line_and_line_before(tmp_path: Path) -> None:
    src = (
        "def load(cur, df, engine):\n"
        "    cur.execute('INSERT INTO facts SELECT * FROM src')  # idemtest: ignore[IDM201]\n"
        "    # idemtest: ignore[IDM202]\n"
        "    df.to_sql('facts2', engine, if_exists='append')\n"
        "    df.to_sql('facts3', engine, if_exists='append')  # idemtest: ignore[IDM999]\n"
        "    df.to_sql('facts4', engine, if_exists='append')  # idemtest: ignore\n"
    )
    result = review_paths([write(tmp_path, "load.py", src)])
    assert [(f.line, f.rule_id) for f in result.findings] == [(5, "IDM202")]
    assert result.suppressed == 3


def test_dialect_flag_limits_parsing(tmp_path: Path) -> None:
    p = write(tmp_path, "bq.sql", "INSERT INTO `p.d.t` SELECT * FROM `p.d.s`;\n")
    assert [f.rule_id for f in review_paths([p], dialect="bigquery").findings] == ["IDM201"]
    # Postgres cannot tokenize BigQuery backticks: listed as skipped, not a crash.
    result = review_paths([p], dialect="postgres")
    assert result.findings == [] and result.skipped


def test_output_file_unwritable_is_usage_error(tmp_path: Path) -> None:
    write(tmp_path, "x.sql", "SELECT 1;\n")
    assert main([str(tmp_path), "--output", str(tmp_path / "no" / "dir" / "r.txt")]) == 2


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, idemtest.review; print('sqlglot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "False"


def test_main_runs_without_pytest_loaded(tmp_path: Path) -> None:
    import subprocess
    import sys

    write(tmp_path, "x.sql", RISKY_SQL)
    code = (
        "import sys; from idemtest.review import main; rc = main(sys.argv[1:]); "
        "assert 'pytest' not in sys.modules, 'pytest imported'; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path), "--format", "json"],
                          capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["findings"][0]["rule"] == "IDM201"


def test_corpus_table_mentions_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    main([str(CORPUS / "cron")])
    out = capsys.readouterr().out
    assert "Jobs found:" in out and "cron" in out


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    for rel in ("pipelines/load.sql", "pipelines/legacy/old.sql", "tests/test_load.py",
                "pipelines/test_fixture.py", "pipelines/conftest.py", "pipelines/load_test.py"):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(RISKY_SQL if rel.endswith(".sql") else
                     f"def test_x(cur):\n    cur.execute({RISKY_SQL.strip()!r})\n", encoding="utf-8")
    return root


def test_test_code_is_left_out_unless_asked(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    res = review_paths([root])
    assert {f.file for f in res.findings} == {"proj/pipelines/load.sql",
                                              "proj/pipelines/legacy/old.sql"}
    assert res.excluded == 4
    assert {(s.file, s.reason) for s in res.left_out} >= {
        ("proj/tests/test_load.py", "test code (--include-tests reviews it)"),
        ("proj/pipelines/conftest.py", "test code (--include-tests reviews it)")}
    both = review_paths([root], options=ReviewOptions(include_tests=True))
    assert len({f.file for f in both.findings}) == 6 and both.excluded == 0
    # a test file named explicitly is reviewed: the user asked for it
    assert review_paths([root / "tests" / "test_load.py"]).findings


@pytest.mark.parametrize(("argv", "files"), [
    (["--exclude", "legacy"], {"proj/pipelines/load.sql"}),
    (["--exclude", "pipelines/legacy/*.sql"], {"proj/pipelines/load.sql"}),
    (["--exclude", "*.sql"], set()),
    (["--exclude", "nomatch"], {"proj/pipelines/load.sql", "proj/pipelines/legacy/old.sql"}),
])
def test_exclude_globs(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                       files: set[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    main([str(root), "--format", "json", *argv])
    doc = json.loads(capsys.readouterr().out)
    assert {f["file"] for f in doc["findings"]} == files
    assert all(x["reason"] for x in doc["left_out"])


@pytest.mark.parametrize(("argv", "rules"), [
    ([], {"IDM201", "IDM402"}),
    (["--select", "IDM4"], {"IDM402"}),
    (["--select", "IDM201,IDM402"], {"IDM201", "IDM402"}),
    (["--ignore", "IDM201"], {"IDM402"}),
    (["--select", "IDM2,IDM4", "--ignore", "idm402"], {"IDM201"}),
])
def test_select_and_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch, argv: list[str],
                           rules: set[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a.sql", RISKY_SQL + MEDIUM_SQL.replace("INSERT INTO t", "INSERT INTO t2"))
    main([str(tmp_path / "a.sql"), "--format", "json", *argv])
    assert {f["rule"] for f in json.loads(capsys.readouterr().out)["findings"]} == rules


def test_pyproject_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    (root / "pyproject.toml").write_text(
        '[tool.idemtest.review]\nexclude = ["legacy"]\nignore = ["IDM4"]\n'
        'include-tests = true\nfail-on = "none"\nformat = "json"\n', encoding="utf-8")
    monkeypatch.chdir(root)
    assert main(["."]) == 0  # fail-on none from pyproject
    doc = json.loads(capsys.readouterr().out)
    files = {f["file"] for f in doc["findings"]}
    assert "pipelines/load.sql" in files and "tests/test_load.py" in files
    assert not any("legacy" in f for f in files)
    # the command line adds to pyproject's globs and overrides its scalars
    assert main([".", "--exclude", "tests", "--fail-on", "high", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert not any(f["file"].startswith("tests/") for f in doc["findings"])


@pytest.mark.parametrize(("toml", "argv", "message"), [
    ("[tool.idemtest.review]\nexclud = []\n", [], "unknown key(s) exclud"),
    ("[tool.idemtest.review]\nselect = \"IDM2\"\n", [], "must be a list of strings"),
    ("[tool.idemtest.review]\nfail-on = \"sometimes\"\n", [], "fail-on must be"),
    ("[tool.idemtest.review\n", [], "not valid TOML"),
    ("", ["--select", "IDM9"], "names no rule"),
    ("", ["--ignore", "XYZ"], "names no rule"),
    ("", ["--config", "nope.toml"], "no such file"),
])
def test_bad_options_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch, toml: str,
                                      argv: list[str], message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(toml, encoding="utf-8")
    write(tmp_path, "a.sql", RISKY_SQL)
    monkeypatch.chdir(tmp_path)
    assert main(["a.sql", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_an_internal_error_on_one_file_spares_the_others(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # a bug of a rule on one file: that file is named as not reviewed (exit 3, every output
    # format says so), the others are reviewed and reported as usual
    import idemtest.review.python_rules as rules

    real = rules.review_python

    def flaky(path: str, *args: object, **kwargs: object) -> object:
        if path.endswith("boom.py"):
            raise TypeError("unhashable type: 'dict'")
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rules, "review_python", flaky)
    (tmp_path / "boom.py").write_text("x = 1\n")
    (tmp_path / "load.sql").write_text("INSERT INTO t SELECT * FROM s;\n")
    assert main([str(tmp_path), "--fail-on", "none"]) == 3
    out, err = capsys.readouterr()
    assert "load.sql" in out and "IDM201" in out
    assert "Not reviewed" in out and "boom.py" in out
    assert "boom.py: internal error of idemtest review (TypeError: unhashable type: 'dict')" in err
    assert main([str(tmp_path), "--format", "json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert [e["file"].rsplit("/", 1)[-1] for e in doc["internal_errors"]] == ["boom.py"]
    assert main([str(tmp_path), "--format", "sarif"]) == 3
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is False
    assert any(n["level"] == "error" and "boom.py" in n["message"]["text"]
               for n in run["invocations"][0]["toolExecutionNotifications"])
