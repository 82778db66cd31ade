"""The shop's REST API client, as the pipeline uses it in production.

idemtest never calls these: `idemtest.dlt.check(readers={...})` answers them with the
generated source rows visible at the run's time, so the resources in `shop.py` run as
written."""

from __future__ import annotations

from typing import Any

BASE_URL = "https://shop.example.com/api/v1"


def _get(path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    from dlt.sources.helpers import requests  # dlt's retrying requests

    rows: list[dict[str, Any]] = []
    url: str | None = f"{BASE_URL}/{path}"
    while url:
        resp = requests.get(url, params=params, timeout=30)
        resp.raise_for_status()
        body = resp.json()
        rows.extend(body["data"])
        url, params = body.get("next"), {}
    return rows


def fetch_orders(updated_since: Any = None) -> list[dict[str, Any]]:
    """Orders changed since `updated_since` (all of them when None)."""
    return _get("orders", {"updated_since": str(updated_since)} if updated_since else {})


def fetch_events(after: Any = None) -> list[dict[str, Any]]:
    """Click events created after `after`."""
    return _get("events", {"created_after": str(after)} if after else {})
