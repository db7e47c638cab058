"""Unit tests of `rules/identity.py`: what a renumbering old → new does, from what is known of both keys."""

from __future__ import annotations

from datetime import date

import pytest

from rules.identity import Alias, KeyFacts, renumbering
from rules.outcomes import Refused

A, B, C, X = "A", "B", "C", "X"


def own(key: str) -> KeyFacts:
    return KeyFacts(key, key)


def alias(key: str, of: str, replaced: str) -> KeyFacts:
    return KeyFacts(key, of, Alias(key, of, replaced, date(2024, 3, 1)))


def unknown(key: str) -> KeyFacts:
    return KeyFacts(key, None)


@pytest.mark.parametrize(
    ("old", "new", "verdict"),
    [
        (own(A), unknown(B), "alias"),  # A → B: B becomes another number of A
        (alias(B, A, A), unknown(C), "alias"),  # then B → C: C is A's too (a chain ends in A)
        (own(A), alias(B, A, A), "repeat"),  # A → B delivered twice
        (alias(B, A, A), alias(C, A, B), "repeat"),  # B → C delivered twice
        (own(A), own(X), "merge"),  # B already had reports of its own: two persons are one
        (alias(B, A, A), own(X), "merge"),
    ],
)
def test_what_a_renumbering_does(old: KeyFacts, new: KeyFacts, verdict: str) -> None:
    assert renumbering(old, new) == verdict


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (unknown(A), unknown(B), "rule.renumbering_from_unknown_key"),
        (alias(B, A, A), own(A), "rule.renumbering_loop: the new number is already this person's"),
        (own(A), alias(C, A, B), "rule.renumbering_loop: the new number is already this person's"),
        (own(A), alias(B, X, X), "rule.renumbering_to_another_persons_number"),
    ],
)
def test_renumberings_that_are_refused(old: KeyFacts, new: KeyFacts, reason: str) -> None:
    """B → A after A → B is a loop; A → C when C came from B (A → B → C) names a number the person
    already has by another route; a number that is another person's alias is not taken over."""
    assert renumbering(old, new) == Refused(reason)
