"""The 95% confidence interval of a mean over seeds, one rule for every benchmark that compares settings."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = ["t_half_width"]


def t_half_width(values: Sequence[float]) -> float:
    """Half the width of the 95% interval of ``values``' mean (Student's t, sample standard deviation);
    NaN for fewer than two values, which give no spread."""
    a = np.asarray(values, dtype=float)
    if len(a) < 2:
        return math.nan
    return float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a)))
