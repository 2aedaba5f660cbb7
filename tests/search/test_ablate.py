"""``search ablate``: variants of one knob over paired seeds, the table, the tests, and bad --vary values."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from evaluation import Architecture
from search.cli import main
from search.post.ablate import (
    Variant,
    ablation_table,
    make_variants,
    paired_t_p_value,
    parse_variation,
    sign_flip_p_value,
)

SMALL_YAML = """\
stem: {style: small, width: 8}
stages:
  - {block: dense, depth: 1, growth_rate: 4, bn_size: 0}
  - {block: dense, depth: 1, growth_rate: 4, bn_size: 0}
transitions:
  - {compression: 0.5, pooling: avg}
"""


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_YAML)
    return path


def test_ablate_pooling_prints_both_variants_with_means_stds_and_p_values(
    small_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ablation"
    argv = ["ablate", str(small_config), "--vary", "transitions.pooling=avg,max", "--seeds", "2", "--epochs", "1"]
    argv += ["--dataset", "digits", "--batch-size", "64", "--device", "cpu", "--precision", "fp32", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "ablation-transitions.pooling.csv")
    assert table["variant"].tolist() == ["transitions.pooling=avg", "transitions.pooling=max"], table
    for variant, row in table.set_index("variant").iterrows():
        runs = [json.loads((out / variant / f"seed-{s}" / "result.json").read_text()) for s in (0, 1)]
        accuracies = pd.Series([r["test_accuracy"] for r in runs])
        assert row["mean_test_accuracy"] == pytest.approx(accuracies.mean()), variant
        assert row["std"] == pytest.approx(accuracies.std()), variant
        line = next(x for x in printed.splitlines() if x.strip().startswith(variant))
        assert f"{accuracies.mean() * 100:.2f} %" in line and f"{accuracies.std() * 100:.2f} %" in line, line
    compared = table.iloc[1]
    assert compared["p_sign_flip"] in (0.5, 1.0), "with 2 seeds the exact sign-flip p is 0.5 or 1"
    line = printed.splitlines()[2]
    assert f"{compared['p_sign_flip']:.3g}" in line and "reference" in printed.splitlines()[1], printed
    header = printed.splitlines()[0]
    assert all(name in header for name in ("mean test accuracy", "std", "p (t-test)", "p (sign-flip)")), header
    document = json.loads((out / "ablation-transitions.pooling.json").read_text())
    assert document["vary"] == "transitions.pooling" and document["seeds"] == [0, 1], document


def test_ablate_resumes_without_retraining(
    small_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ablation"
    argv = ["ablate", str(small_config), "--vary", "stem.width=4,8", "--seeds", "1", "--epochs", "1"]
    argv += ["--dataset", "digits", "--batch-size", "64", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    first = capsys.readouterr().out
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/seed-*/*")}
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "2 of 2 trainings already done" in captured.err and "epoch 1/1" not in captured.err, captured.err
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/seed-*/*")} == stamps, "no file was rewritten"
    assert captured.out == first, "the same table"
    assert "p undefined with 1 seed" in first and "n/a (1 seed)" in first, f"1 seed: no p-value, said so\n{first}"


@pytest.mark.parametrize(
    ("vary", "fragment"),
    [
        ("transitions.pooling=avg,median", "transitions[0].pooling must be one of avg, max, none"),
        ("transitions.pooling", "--vary expects KEY=V1,V2"),
        ("transitions.pooling=avg", "at least two different values"),
        ("stages.5.block=dense,residual", "stages are numbered 0 to 1"),
        ("stem.depth=1,2", "stem has no depth"),
        ("stages.unit=basic,bottleneck", "no entry of stages has unit"),
        ("width=1,2", "not a knob path"),
        ("stages.growth_rate=4,[1]", "not a single value"),
        ("stages.growth_rate=4,0", "stages[0].growth_rate must be >= 1"),
    ],
)
def test_bad_vary_exits_2_with_one_line_before_training(
    vary: str, fragment: str, small_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never"
    code = main(["ablate", str(small_config), "--vary", vary, "--dataset", "digits", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and "\n" not in err, f"--vary {vary}: exit {code}, {err!r}"
    assert not out.exists(), "nothing is trained for a refused variation"


def test_variants_set_every_matching_knob_or_the_one_named() -> None:
    arch = Architecture.from_dict(
        {
            "stem": {"style": "small", "width": 8},
            "stages": [
                {"block": "dense", "depth": 2, "growth_rate": 4},
                {"block": "residual", "depth": 1, "unit": "basic", "width": 16},
                {"block": "dense", "depth": 2, "growth_rate": 4},
            ],
            "transitions": [{"pooling": "avg"}, None],
        }
    )
    growth = make_variants(arch, parse_variation("stages.growth_rate=6,12"))
    assert [[s.get("growth_rate") for s in v.arch.to_dict()["stages"]] for v in growth] == [
        [6, None, 6],
        [12, None, 12],
    ]
    one = make_variants(arch, parse_variation("stages.2.block=dense,csp_dense"))[1].arch.to_dict()["stages"]
    assert one[0]["block"] == "dense" and one[2]["block"] == "csp_dense" and one[2]["growth_rate"] == 4, one
    assert one[2]["depth"] == 2, "a new block keeps the stage's depth and the knobs both blocks have"
    pooled = make_variants(arch, parse_variation("transitions.pooling=avg,max"))[1].arch.to_dict()["transitions"]
    assert pooled == [{"compression": 0.5, "pooling": "max"}, None], "null transitions stay null"


def test_sign_flip_p_value_matches_hand_counts() -> None:
    # [1, 2, 3]: of the 8 sign patterns only +++ and --- reach |sum| 6.
    assert sign_flip_p_value([1.0, 2.0, 3.0]) == 0.25
    # [2, 1, 1, 1]: |sum| 5 only for ++++ and ----: 2 of 16.
    assert sign_flip_p_value([0.02, 0.01, 0.01, 0.01]) == 0.125
    # [1, -1]: observed sum 0, every pattern is at least as far from 0.
    assert sign_flip_p_value([0.01, -0.01]) == 1.0
    # [3, 1]: sums 4, 2, -2, -4; |sum| >= 4 for 2 of 4.
    assert sign_flip_p_value([0.03, 0.01]) == 0.5
    assert sign_flip_p_value([0.004]) == 1.0, "one difference: both signs reach it"


def test_paired_t_p_value_matches_the_cauchy_case_and_refuses_undefined_ones() -> None:
    # Differences 0.01 and 0.03: t = 0.02 / (0.01414 / sqrt 2) = 2 with 1 degree of freedom (Cauchy),
    # two-sided p = 1 - (2 / pi) * atan(2) = 0.29517.
    assert paired_t_p_value([0.80, 0.82], [0.81, 0.85]) == pytest.approx(0.2951672, abs=1e-6)
    assert paired_t_p_value([0.80], [0.81]) is None, "one pair: no t-test"
    assert paired_t_p_value([0.80, 0.82], [0.81, 0.83]) is None, "identical differences: no spread to test"


def test_ablation_table_with_one_seed_says_the_p_value_is_undefined() -> None:
    arch = Architecture.from_dict({"stages": [{"block": "dense", "depth": 1}]})
    variants = [Variant("a=1", "a=1", arch), Variant("a=2", "a=2", arch)]
    record = {"params": 10, "macs": 100, "latency_ms": 1.0}
    table = ablation_table(variants, [[{**record, "test_accuracy": 0.8}], [{**record, "test_accuracy": 0.9}]])
    row = table.iloc[1]
    assert row["diff_vs_first"] == pytest.approx(0.1) and row["note"] == "p undefined with 1 seed", row
    assert pd.isna(row["p_ttest"]) and pd.isna(row["p_sign_flip"]) and pd.isna(row["std"]), row
