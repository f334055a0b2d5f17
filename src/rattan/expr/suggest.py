"""Hints ("did you mean ...?") for misspelt names: context variables, component codes, exported keys.

One helper for every message that names something unknown, so the hints read the same everywhere.
It lives with the expressions (the lowest layer that needs it); the validator and the engine import
it from here.
"""

from __future__ import annotations

from collections.abc import Iterable

# difflib compares the word with every candidate (about 2 ms per 1000): past this many candidates
# the hint is skipped, since a non-strict run may hit an undefined name at every node it prepares
MAX_CANDIDATES = 1000
_CUTOFF = 0.6  # difflib's default: how alike two names must be for a hint


def close_match(word: str, candidates: Iterable[str], *, limit: int = MAX_CANDIDATES) -> str | None:
    """Return the candidate closest to ``word`` (difflib's similarity ratio, at least 0.6), or None.

    Args:
        word: the unknown name.
        candidates: known names; ``word`` itself and non-strings are ignored, duplicates are fine.
        limit: give no hint when there are more distinct candidates than this.

    Returns:
        The best match, or None when nothing is close enough or there are too many candidates.
    """
    known: set[str] = set()
    for candidate in candidates:
        if isinstance(candidate, str) and candidate != word:
            known.add(candidate)
            if len(known) > limit:
                return None
    import difflib  # only on failure paths: keeps importing rattan.expr cheap

    # difflib.get_close_matches(n=1), except that of equally close candidates the first in sorted
    # order wins: get_close_matches picks the greatest string, which reads as arbitrary in a hint
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(word)
    best: str | None = None
    best_ratio = _CUTOFF
    for candidate in sorted(known):
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() < best_ratio or matcher.quick_ratio() < best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio or (best is None and ratio >= best_ratio):
            best, best_ratio = candidate, ratio
    return best


def did_you_mean(word: str, candidates: Iterable[str], *, limit: int = MAX_CANDIDATES) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidate, or ``""`` when there is none.

    Meant to be appended to a message that names ``word``:
    ``f"name {word!r} is not defined{did_you_mean(word, names)}"``.
    """
    match = close_match(word, candidates, limit=limit)
    return f" (did you mean {match!r}?)" if match is not None else ""
