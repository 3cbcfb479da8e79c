"""How a claimed identity attribute is compared with the register's: normalise, then match.

Normalisation folds what should not make a difference (case, accents, repeated spaces,
punctuation in names); the score is 100 times the Jaro-Winkler similarity, the algorithm
the KYC Match definition names, given only when the match is false.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = ["jaro_winkler", "normalise"]

_SEPARATORS = re.compile(r"[\s\-'.,/]+")


@lru_cache(maxsize=8192)  # pure, and asked again for the same names on every match
def normalise(value: str) -> str:
    """Case- and accent-insensitive form with single spaces and no name punctuation."""
    folded = unicodedata.normalize("NFKD", value)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).casefold()
    return _SEPARATORS.sub(" ", folded).strip()


@lru_cache(maxsize=8192)  # pure; a register's values and the claims repeat
def jaro_winkler(a: str, b: str, prefix_scale: float = 0.1) -> float:
    """Jaro-Winkler similarity in [0, 1]."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    window = max(0, max(len(a), len(b)) // 2 - 1)
    a_hits = [False] * len(a)
    b_hits = [False] * len(b)
    matches = 0
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(len(b), i + window + 1)):
            if not b_hits[j] and b[j] == ch:
                a_hits[i] = b_hits[j] = True
                matches += 1
                break
    if matches == 0:
        return 0.0
    b_matched = [b[j] for j in range(len(b)) if b_hits[j]]
    a_matched = [a[i] for i in range(len(a)) if a_hits[i]]
    transpositions = sum(x != y for x, y in zip(a_matched, b_matched, strict=True)) / 2
    jaro = (matches / len(a) + matches / len(b) + (matches - transpositions) / matches) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * prefix_scale * (1 - jaro)
