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
"""

from __future__ import annotations

import ast

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
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and len(n.args) >= 2:
            key, value = literal(n.args[0]), literal(n.args[1])
            if isinstance(key, str) and "partitionoverwritemode" in key.lower() and str(value).lower() == "dynamic":
                return True
    return False


def _writes(scope: ast.AST) -> list[tuple[ast.Call, str, str | None, bool, bool]]:
    """(action call, action, mode, partitioned, overwrite kw) of each DataFrameWriter action."""
    out = []
    for n in ast.walk(scope):
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


def spark_writes(tree: ast.Module) -> list[Hit]:
    hits: list[Hit] = []
    if not any(isinstance(n, ast.Attribute) and n.attr in _ACTIONS | {"merge", "write"} for n in ast.walk(tree)) \
            and not any(isinstance(n, ast.Name) and n.id == "write_deltalake" for n in ast.walk(tree)):
        return hits
    dynamic = _dynamic_somewhere(tree)
    funcs: list[ast.FunctionDef | ast.AsyncFunctionDef] = [
        f for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
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
        in_handler = {id(x) for h in ast.walk(f) if isinstance(h, ast.ExceptHandler)
                      for b in h.body for x in ast.walk(b)}
        for call, action, mode, partitioned, overwrite in _writes(f):
            if action == "saveAsTable" and mode == "overwrite" and partitioned:
                hits.append((call.lineno, "IDM701", f"saveAsTable in overwrite mode replaces the whole table (in {f.name})"))
            elif (mode == "overwrite" or overwrite) and partitioned and not dynamic:
                hits.append((call.lineno, "IDM701", f"partitioned overwrite, static partitionOverwriteMode (in {f.name})"))
            elif action == "insertInto" and (overwrite or mode == "overwrite") and not dynamic:
                hits.append((call.lineno, "IDM701", f"insertInto(overwrite=True) under the static partitionOverwriteMode (in {f.name})"))
            elif ((action == "insertInto" and not overwrite and mode in (None, "append"))
                  or mode == "append") and id(call) not in in_handler:
                hits.append((_mode_line(call), "IDM702", f"{action} appends (in {f.name})"))
        names = {n.attr if isinstance(n, ast.Attribute) else n.id for n in ast.walk(f) if isinstance(n, (ast.Attribute, ast.Name))}
        wall = contains_wall_clock(f)
        for n in ast.walk(f):
            if not isinstance(n, ast.Call):
                continue
            nm = _name(n)
            if nm == "merge" and isinstance(n.func, ast.Attribute) and ("DeltaTable" in names or "forPath" in names or "forName" in names) \
                    and not (names & _DEDUP):
                hits.append((n.lineno, "IDM703", f"MERGE source not deduplicated on its key (in {f.name})"))
            if wall and nm == "write_deltalake" and kw(n, "predicate") is not None:
                hits.append((n.lineno, "IDM704", f"write_deltalake(predicate=...) in a function reading the wall clock ({f.name})"))
            if wall and nm == "option" and n.args and literal(n.args[0]) == "replaceWhere":
                hits.append((n.lineno, "IDM704", f"replaceWhere in a function reading the wall clock ({f.name})"))
    return hits
