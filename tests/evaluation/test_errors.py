"""The phrases every "saved with other settings" refusal shares."""

from __future__ import annotations

from evaluation.errors import differences


def test_differences_names_each_differing_setting_with_both_values() -> None:
    kept = {"lr": 0.2, "epochs": 3, "pooling": "avg"}
    asked = {"lr": 0.1, "epochs": 3, "pooling": "max", "seed": 1}
    assert differences(kept, asked) == ["lr 0.2 (asked 0.1)", "pooling 'avg' (asked 'max')", "seed None (asked 1)"]


def test_differences_compares_only_the_keys_given() -> None:
    assert differences({"lr": 0.2, "seed": 0}, {"lr": 0.2, "seed": 1}, ["lr"]) == []
    assert differences({"lr": 0.2}, {"lr": 0.2}) == []


def test_differences_bounds_a_huge_value_to_one_short_line() -> None:
    (phrase,) = differences({"widths": list(range(10_000))}, {"widths": [1]})
    assert "\n" not in phrase and len(phrase) < 200
