"""PySpark and Delta Lake writes (IDM7xx, rules in model.py): the static view of what `idemtest.spark.check`
catches at run time (docs/spark.md).

A write is a call chain ending in a DataFrameWriter action (`df.write.mode(...)
.partitionBy(...).saveAsTable(...)`); its mode, partitioning and options are read off
the chain. Per function:

- IDM701: an overwrite of a partitioned output under the static `partitionOverwriteMode`
  (the default: nothing in the file sets it to dynamic), or `saveAsTable` in overwrite
  mode, which replaces the whole table whatever the mode says;
- IDM702: an append (`insertInto` without `overwrite=True`, `mode("append")`);
- IDM703: a Delta MERGE (Delta on Spark or delta-rs) whose function never deduplicates
  its source (`dropDuplicates`, `distinct`, `row_number`, `groupBy`, …);
- IDM704: a `replaceWhere` / delta-rs `predicate=` overwrite in a function that reads the
  wall clock.

AWS Glue's S3 sinks (`glueContext.write_dynamic_frame.from_options(connection_type="s3",
connection_options={"partitionKeys": [...]})`, `getSink(..., partitionKeys=...)` then
`writeFrame`) always append new files: a partitioned one is IDM702 too, also when the job
reads only its sources' latest partitions (`get_latest_partitions(...)`: a same-day rerun
rebuilds the same snapshot and appends it again into the same partition), unless its frame is
filtered on a cursor read from the target (`F.col(c) > max_partition`: an incremental copy,
whose strict cursor is IDM402/IDM403 instead).
"""

from __future__ import annotations

import ast
import re

from .astwalk import walk
from .python_rules import contains_wall_clock, dotted, kw, literal

Hit = tuple[int, str, str]  # line, rule id, detail

_ACTIONS = {"save", "saveAsTable", "insertInto", "parquet", "csv", "json", "orc", "text"}
_DEDUP = {"dropDuplicates", "drop_duplicates", "distinct", "row_number", "groupBy", "groupby", "agg", "dropDuplicatesWithinWatermark"}


def _chain(call: ast.Call) -> list[ast.Call]:
    """The calls of `a.b(...).c(...).d(...)`, innermost first."""
    out = [call]
    node: ast.AST = call.func
    while isinstance(node, ast.Attribute):
        node = node.value
        if isinstance(node, ast.Call):
            out.append(node)
            node = node.func
    return list(reversed(out))


def _name(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else dotted(call.func)


def _dynamic_somewhere(tree: ast.AST) -> bool:
    for n in walk(tree):
        if isinstance(n, ast.Call) and len(n.args) >= 2:
            key, value = literal(n.args[0]), literal(n.args[1])
            if isinstance(key, str) and "partitionoverwritemode" in key.lower() and str(value).lower() == "dynamic":
                return True
    return False


def _writes(scope: ast.AST) -> list[tuple[ast.Call, str, str | None, bool, bool]]:
    """(action call, action, mode, partitioned, overwrite kw) of each DataFrameWriter action."""
    out = []
    for n in walk(scope):
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _ACTIONS):
            continue
        chain = _chain(n)
        names = [_name(c) for c in chain]
        if "write" not in dotted(n.func) and not any(x in ("mode", "partitionBy", "format") for x in names):
            continue  # not a DataFrameWriter (`json(...)` of something else)
        mode = None
        partitioned = False
        for c in chain:
            nm = _name(c)
            if nm == "mode" and c.args:
                m = literal(c.args[0])
                mode = m.lower() if isinstance(m, str) else mode
            if nm == "partitionBy":
                partitioned = True
        m = literal(kw(n, "mode"))
        if isinstance(m, str):
            mode = m.lower()
        partitioned = partitioned or kw(n, "partitionBy") is not None
        ow = literal(kw(n, "overwrite"))
        if ow is None and n.func.attr == "insertInto" and len(n.args) > 1:
            ow = literal(n.args[1])
        out.append((n, n.func.attr, mode, partitioned, bool(ow)))
    return out


def _mode_line(call: ast.Call) -> int:
    """The line a user edits to stop an append: the `.mode("append")` (or mode= keyword) of a
    chain written over several lines, not the chain's first line (`df.write \\`)."""
    m = kw(call, "mode")
    if m is not None:
        return m.lineno
    for c in _chain(call):
        if _name(c) == "mode" and c.args and isinstance(c.func, ast.Attribute):
            return c.func.end_lineno or c.lineno
    return call.lineno


def _exists_test(test: ast.expr) -> bool | None:
    """True for a test that the table exists (`catalog.tableExists(t)`,
    `DeltaTable.isDeltaTable(spark, p)`), False for its negation, None for anything else."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _exists_test(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.Call) and _name(test) in {"tableExists", "isDeltaTable"}:
        return True
    return None


def _first_creation(f: ast.AST) -> set[int]:
    """Nodes of the branch taken only when the output table does not exist yet (`if
    catalog.tableExists(t): merge ... else: df.write.mode("overwrite").saveAsTable(t)`): the
    overwrite there creates the table, it has no other partitions to wipe."""
    out: set[int] = set()
    for n in walk(f):
        if isinstance(n, ast.If) and (exists := _exists_test(n.test)) is not None:
            branch = n.orelse if exists else n.body
            out |= {id(x) for b in branch for x in walk(b)}
    return out


def _generic_merge_helper(call: ast.Call, f: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """`.merge(df.alias("s"), f"{conditions} AND ...")` where both the source `df` and the
    merge condition come from the function's parameters: a helper merging whatever frame on
    whatever key its callers pass; it cannot know the key to deduplicate on, so whether the
    source is unique on it is the callers' business. (A merge on a key written here, from a
    parameter frame, is still judged here.)"""
    params = {a.arg for a in f.args.posonlyargs + f.args.args + f.args.kwonlyargs}
    src = call.args[0] if call.args else kw(call, "source")
    while isinstance(src, ast.Call) and isinstance(src.func, ast.Attribute) \
            and src.func.attr in {"alias", "toDF", "select"}:
        src = src.func.value
    cond = call.args[1] if len(call.args) > 1 else kw(call, "condition")
    return isinstance(src, ast.Name) and src.id in params and cond is not None and any(
        isinstance(n, ast.Name) and n.id in params for n in walk(cond))


_KEY_PAIR = re.compile(r"\(?\s*(\w+)\.(\w+)\s*=\s*(\w+)\.(\w+)\s*\)?")


def _crossed_pairs(text: str) -> str | None:
    """A merge condition made only of `a.x = b.y` equalities between two aliases in which one
    column of a side is equated to two different columns of the other (`tgt.driver_id =
    upd.driver_id AND tgt.race_id = upd.driver_id`): it asks the target's two columns to be
    equal, so (almost) no row matches. The crossed pair, or None."""
    parts = re.split(r"\s+and\s+", text.strip(), flags=re.I)
    if len(parts) < 2:
        return None
    pairs = []
    for part in parts:
        m = _KEY_PAIR.fullmatch(part.strip())
        if m is None:
            return None
        pairs.append(m.groups())
    left_alias, right_alias = pairs[0][0].lower(), pairs[0][2].lower()
    by_side: dict[tuple[str, str], set[str]] = {}
    for a, x, b, y in pairs:
        sides = {a.lower(): x.lower(), b.lower(): y.lower()}
        if set(sides) != {left_alias, right_alias} or left_alias == right_alias:
            return None
        lx, ry = sides[left_alias], sides[right_alias]
        by_side.setdefault((left_alias, lx), set()).add(ry)
        by_side.setdefault((right_alias, ry), set()).add(lx)
    for (alias, col), others in by_side.items():
        if len(others) > 1:
            return f"{alias}.{col} is equated to {', '.join(sorted(others))}"
    return None


_MERGE_WORD = re.compile(r"merge|upsert", re.I)


def crossed_merge_keys(tree: ast.Module) -> list[Hit]:
    """IDM205: a merge condition (a string passed to a `merge`/`upsert` call, directly or
    through a variable, or kept in a `merge_*` variable) whose key pairs are crossed (`_crossed_pairs`): the source rows match nothing
    and are inserted again on every re-run."""
    merge_args: set[str] = set()
    direct: list[ast.Constant] = []
    for n in walk(tree):
        if isinstance(n, ast.Call) and _MERGE_WORD.search(_name(n)):
            for a in [*n.args, *(k.value for k in n.keywords)]:
                if isinstance(a, ast.Name):
                    merge_args.add(a.id)
                elif isinstance(a, ast.Constant) and isinstance(a.value, str):
                    direct.append(a)
    consts = direct + [a.value for a in walk(tree) if isinstance(a, ast.Assign)
                       and len(a.targets) == 1 and isinstance(a.targets[0], ast.Name)
                       and (a.targets[0].id in merge_args or _MERGE_WORD.search(a.targets[0].id))
                       and isinstance(a.value, ast.Constant)
                       and isinstance(a.value.value, str)]
    hits: list[Hit] = []
    for c in consts:
        crossed = _crossed_pairs(str(c.value))
        if crossed is not None:
            hits.append((c.lineno, "IDM205", f"crossed merge keys: {crossed}"))
    return hits


_CURSOR_CALL = re.compile(r"max|latest|last", re.I)


def _target_cursors(f: ast.AST) -> dict[str, int]:
    """`x = get_max_date_partition_value(...)` (a call named max/latest/last) then
    `df.filter(F.col(c) > x)`: the frame assigned from such a filter, with the filter's line."""
    cursors = {t.id for a in walk(f) if isinstance(a, ast.Assign) and len(a.targets) == 1
               and isinstance(t := a.targets[0], ast.Name) and isinstance(a.value, ast.Call)
               and _CURSOR_CALL.search(_name(a.value) or "")}
    out: dict[str, int] = {}
    for a in walk(f):
        if not (isinstance(a, ast.Assign) and len(a.targets) == 1 and isinstance(a.targets[0], ast.Name)
                and isinstance(a.value, ast.Call) and _name(a.value) in {"filter", "where"} and a.value.args):
            continue
        cond = a.value.args[0]
        if isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], ast.Gt) \
                and isinstance(cond.comparators[0], ast.Name) and cond.comparators[0].id in cursors \
                and isinstance(cond.left, ast.Call) and _name(cond.left) in {"col", "F.col"}:
            out[a.targets[0].id] = a.lineno
    return out


def _glue_sinks(f: ast.AST) -> list[int]:
    """Lines of the partitioned AWS Glue S3 sinks of a scope (`write_dynamic_frame.from_options`
    with `partitionKeys`; `getSink(..., partitionKeys=...)`, reported on its `writeFrame`)."""
    def partitioned(keys: ast.expr | None) -> bool:
        return keys is not None and not (isinstance(keys, (ast.List, ast.Tuple)) and not keys.elts)
    out: list[int] = []
    sinks: set[str] = set()
    for n in walk(f):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                and n.func.attr == "from_options" and "write_dynamic_frame" in dotted(n.func) \
                and str(literal(kw(n, "connection_type")) or "s3").lower() == "s3":
            opts = kw(n, "connection_options")
            keys = None
            if isinstance(opts, ast.Dict):
                keys = next((v for k, v in zip(opts.keys, opts.values)
                             if k is not None and literal(k) == "partitionKeys"), None)
            if partitioned(keys):
                out.append(n.lineno)
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                and isinstance(n.value, ast.Call) and _name(n.value) == "getSink" \
                and str(literal(kw(n.value, "connection_type")) or "s3").lower() == "s3" \
                and partitioned(kw(n.value, "partitionKeys")):
            sinks.add(n.targets[0].id)
    for n in walk(f):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "writeFrame" \
                and isinstance(n.func.value, ast.Name) and n.func.value.id in sinks:
            out.append(n.lineno)
    return out


def _frame_names(call: ast.Call) -> set[str]:
    """The names the written frame of a writer chain is built from (`df.write...` -> df)."""
    node: ast.AST = call
    while isinstance(node, (ast.Call, ast.Attribute)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return {node.id} if isinstance(node, ast.Name) else set()


def _derived(f: ast.AST, roots: set[str]) -> set[str]:
    """Names assigned (transitively) from expressions using one of `roots`."""
    out = set(roots)
    changed = True
    while changed:
        changed = False
        for a in walk(f):
            if isinstance(a, ast.Assign) and len(a.targets) == 1 and isinstance(a.targets[0], ast.Name) \
                    and a.targets[0].id not in out \
                    and any(isinstance(x, ast.Name) and x.id in out for x in walk(a.value)):
                out.add(a.targets[0].id)
                changed = True
    return out


def spark_writes(tree: ast.Module) -> list[Hit]:
    hits: list[Hit] = crossed_merge_keys(tree)
    if not any(isinstance(n, ast.Attribute) and n.attr in _ACTIONS | {"merge", "write", "writeFrame", "from_options"}
               for n in walk(tree)) \
            and not any(isinstance(n, ast.Name) and n.id == "write_deltalake" for n in walk(tree)):
        return hits
    dynamic = _dynamic_somewhere(tree)
    funcs: list[ast.FunctionDef | ast.AsyncFunctionDef] = [
        f for f in walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
    # a spark-submit script writes from its top level, outside any function
    top = ast.FunctionDef(name="<module>", args=ast.arguments(
        posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), body=[
        s for s in tree.body if not isinstance(
            s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))], decorator_list=[])
    if top.body:
        funcs.append(top)
    for f in funcs:
        # an append in an except handler writes a row about the failure (an error log): a
        # record per attempt, not the load
        in_handler = {id(x) for h in walk(f) if isinstance(h, ast.ExceptHandler)
                      for b in h.body for x in walk(b)}
        creation = _first_creation(f)
        cursor_frames = _target_cursors(f)
        for line in sorted(set(cursor_frames.values())):
            hits.append((line, "IDM402", f"frame filtered on > the target's newest value, no lookback (in {f.name})"))
            hits.append((line, "IDM403", f"strict > on the target's newest value (in {f.name})"))
        incremental = _derived(f, set(cursor_frames))
        for line in _glue_sinks(f):
            hits.append((line, "IDM702", f"AWS Glue S3 sink appends into its partitions (in {f.name})"))
        for call, action, mode, partitioned, overwrite in _writes(f):
            if mode == "append" and _frame_names(call) & incremental:
                continue  # appends only what is past the target's own newest value
            if id(call) in creation and (mode == "overwrite" or overwrite):
                continue  # creates the table: nothing else in it to wipe
            if action == "saveAsTable" and mode == "overwrite" and partitioned:
                hits.append((call.lineno, "IDM701", f"saveAsTable in overwrite mode replaces the whole table (in {f.name})"))
            elif (mode == "overwrite" or overwrite) and partitioned and not dynamic:
                hits.append((call.lineno, "IDM701", f"partitioned overwrite, static partitionOverwriteMode (in {f.name})"))
            elif action == "insertInto" and (overwrite or mode == "overwrite") and not dynamic:
                hits.append((call.lineno, "IDM701", f"insertInto(overwrite=True) under the static partitionOverwriteMode (in {f.name})"))
            elif ((action == "insertInto" and not overwrite and mode in (None, "append"))
                  or mode == "append") and id(call) not in in_handler:
                hits.append((_mode_line(call), "IDM702", f"{action} appends (in {f.name})"))
        names = {n.attr if isinstance(n, ast.Attribute) else n.id for n in walk(f) if isinstance(n, (ast.Attribute, ast.Name))}
        wall = contains_wall_clock(f)
        for n in walk(f):
            if not isinstance(n, ast.Call):
                continue
            nm = _name(n)
            if nm == "merge" and isinstance(n.func, ast.Attribute) and ("DeltaTable" in names or "forPath" in names or "forName" in names) \
                    and not (names & _DEDUP) and not _generic_merge_helper(n, f):
                hits.append((n.lineno, "IDM703", f"MERGE source not deduplicated on its key (in {f.name})"))
            if wall and nm == "write_deltalake" and kw(n, "predicate") is not None:
                hits.append((n.lineno, "IDM704", f"write_deltalake(predicate=...) in a function reading the wall clock ({f.name})"))
            if wall and nm == "option" and n.args and literal(n.args[0]) == "replaceWhere":
                hits.append((n.lineno, "IDM704", f"replaceWhere in a function reading the wall clock ({f.name})"))
    return hits
