"""Key shapes real systems make, for `Source(values={"id": keys.autoincrement()})`.

Generated keys are small integers (or `ORD-0001`) by default. Loaders break on
other shapes: ids an upstream sequence hands out in arrival order, string keys
holding the separator a loader joins keys with, composite keys whose parts run
together when concatenated ((1, 11) and (11, 1) both read "111"), and keys that
differ only in case or surrounding whitespace. Each shape maps the generator's
key number n (1, 2, ...) to a value, so the random search and the systematic
pass use it alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_WORDS = ("acme", "globex", "initech", "umbrella", "stark", "wayne", "tyrell", "cyberdyne")


@dataclass(frozen=True)
class KeyShape:
    """How key number n of a key column is spelled; see the module docstring."""

    name: str

    def value(self, n: int, part: int, sqltype: str) -> Any:
        """Key number n (from 1) for part `part` of the key (0 for a single-column key)."""
        text = _spell(self.name, n, part)
        base = sqltype.strip().upper()
        if base.startswith(("VARCHAR", "TEXT", "STRING", "CHAR")):
            return str(text)
        if isinstance(text, int):
            return text
        from ._errors import SpecError

        raise SpecError(f"keys.{self.name}() makes string keys; declare the key column as VARCHAR, not {sqltype!r}")

    @property
    def grows_with_arrival(self) -> bool:
        return self.name == "autoincrement"

    def __repr__(self) -> str:
        return f"idemtest.keys.{self.name}()"


def _spell(shape: str, n: int, part: int) -> Any:
    if shape == "autoincrement":
        return n  # renumbered in arrival order when the versions are assembled
    if shape == "concat_collisions":
        # pairs whose parts concatenate alike: (1, 11) / (11, 1), (2, 22) / (22, 2), ...
        base, swap = (n + 1) // 2, n % 2 == 0
        a, b = base, int(f"{base}{base}")
        pair = (b, a) if swap else (a, b)
        return pair[part % 2] if part < 2 else n
    word = _WORDS[(n - 1) // 4 % len(_WORDS)] + ("" if n <= 4 * len(_WORDS) else str((n - 1) // (4 * len(_WORDS))))
    variant = (n - 1) % 4
    if shape == "with_separators":
        return [f"{word},{n}", f"{word}|{n}", f"{word}, {n}", f"{word};{n}|x"][variant]
    if shape == "case_variants":
        return [word, word.upper(), f"{word} ", f" {word.title()}"][variant]
    raise ValueError(shape)


def autoincrement() -> KeyShape:
    """Integer ids handed out in arrival order, as an upstream SERIAL/IDENTITY column does:
    a late row gets a higher id than rows that happened after it."""
    return KeyShape("autoincrement")


def with_separators() -> KeyShape:
    """String keys holding the separators loaders join keys with: 'acme,1', 'acme|2', 'acme, 3'."""
    return KeyShape("with_separators")


def concat_collisions() -> KeyShape:
    """For every column of a composite key: parts that collide when concatenated,
    (1, 11) and (11, 1), (2, 22) and (22, 2)..."""
    return KeyShape("concat_collisions")


def case_variants() -> KeyShape:
    """String keys that differ only in case or surrounding whitespace: 'acme', 'ACME', 'acme ', ' Acme'."""
    return KeyShape("case_variants")


__all__ = ["KeyShape", "autoincrement", "case_variants", "concat_collisions", "with_separators"]
