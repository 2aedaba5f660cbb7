"""benchmarks/fidelity.py's rank statistics, against a second derivation and known cases."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from fidelity import partial_spearman  # noqa: E402


def _residual_pearson(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """The textbook route: regress the ranks of x and of y on those of z, correlate the residuals."""
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    residuals = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in (rx, ry)]
    return float(stats.pearsonr(*residuals).statistic)


def test_partial_spearman_equals_the_correlation_of_rank_residuals() -> None:
    rng = np.random.default_rng(0)
    size = rng.lognormal(size=30)
    accuracy = np.log(size) + rng.normal(scale=0.5, size=30)
    signal = accuracy + rng.normal(scale=0.5, size=30)
    assert math.isclose(
        partial_spearman(signal, accuracy, size), _residual_pearson(signal, accuracy, size), abs_tol=1e-9
    )


def test_partial_spearman_known_cases() -> None:
    rng = np.random.default_rng(1)
    size = rng.lognormal(size=40)
    accuracy = np.log(size) + rng.normal(scale=0.3, size=40)
    assert math.isnan(partial_spearman(size**2, accuracy, size)), "a signal that is the size itself says nothing more"
    noise = rng.normal(size=40)
    assert abs(partial_spearman(noise, accuracy, size)) < 0.35, "a signal independent of both is near 0"
