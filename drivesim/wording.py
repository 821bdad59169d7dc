"""How counts read in what drivesim prints: "1 frame", "2 frames", "1,200 frames"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun`, the noun plural unless the count is one, thousands separated."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
