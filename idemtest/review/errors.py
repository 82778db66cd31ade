"""Review's errors, rooted in the package-wide IdemtestError."""

from __future__ import annotations

from .._errors import IdemtestError


class ReviewUsageError(IdemtestError):
    """Bad arguments to `idemtest review` (unknown dialect, ...): exit status 2."""
