"""One JSON codec for everything idemtest stores: saved scenarios, `run.state`
values, cache keys. Values JSON cannot hold travel as one-key tagged objects."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

_TAGS = ("$datetime", "$date", "$decimal", "$seconds", "$bytes")


def encode(value: Any) -> Any:
    """A JSON-ready value: datetimes, dates, Decimals, timedeltas and bytes become tags."""
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, timedelta):
        return {"$seconds": value.total_seconds()}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    return value


def decode(value: Any) -> Any:
    """The inverse of `encode` for one value (also usable as `object_hook`)."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, raw),) = value.items()
        if tag == "$datetime":
            return datetime.fromisoformat(raw)
        if tag == "$date":
            return date.fromisoformat(raw)
        if tag == "$decimal":
            return Decimal(raw)
        if tag == "$seconds":
            return timedelta(seconds=raw)
        if tag == "$bytes":
            return base64.b64decode(raw)
    return value


def _default(o: Any) -> Any:
    out = encode(o)
    if out is o:
        raise TypeError(
            f"cannot store a {type(o).__name__} value; store str, numbers, booleans, None, "
            "datetimes, dates, Decimals, timedeltas, bytes, lists or dicts"
        )
    return out


def dumps(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, default=_default, indent=indent, sort_keys=sort_keys)


def loads(text: str) -> Any:
    return json.loads(text, object_hook=decode)


def stable_key(value: Any) -> str:
    """A canonical text of a JSON-able value, for dictionary keys and digests."""
    return json.dumps(value, sort_keys=True, default=_default)
