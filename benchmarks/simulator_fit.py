"""The simulator's surrogate: validation accuracy at the default budget from an architecture's knobs and size.

Features (``FeatureEncoder``) come from the space: every searched knob of the
stem, of each stage slot (its block type one-hot, its depth, and each block
knob by name, shared across the block types that have it, so ``growth_rate``
is one column whether a dense or a dual-path stage sets it) and of each
transition, whether the slot is present, plus log10 params and log10 MACs from
the closed-form counts (``evaluation.count``). A knob of a block the stage did
not choose reads 0.

The regressor is chosen among a few well-kept candidates (``CANDIDATES``:
random forests, gradient boosting, a Gaussian process, and a ridge line as the
floor) by k-fold cross-validation on the training architectures alone, by mean
absolute error; the held-out architectures are predicted once, by the chosen
candidate refitted on all the training ones. Each architecture is one row: its
runs' mean accuracy (seed replicates are averaged, so a split never puts one
architecture on both sides).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats
from simulator_data import SPLIT_SEED, Observation, Row, rows_by_architecture
from sklearn.base import RegressorMixin, clone
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from evaluation import Architecture, count
from spaces import Space
from spaces.knobs import Choice

__all__ = [
    "CANDIDATES",
    "FeatureEncoder",
    "NoiseModel",
    "choose_regressor",
    "cross_validate",
    "fit_report",
    "fit_scores",
    "measure_noise",
    "noise_ceiling",
    "origin",
]


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """Seed-to-seed noise of one run's validation accuracy, drawn from measured residuals.

    The measured runs' deviations from their architecture's mean are pooled in
    groups of architectures by mean accuracy (``edges`` separate the groups); a
    draw for a predicted accuracy picks one residual of its group. Resampling
    keeps what a normal law would lose: short runs are mostly close, and now
    and then one trains badly (a drop of 0.05 to 0.12 in the measurements), and
    weak models vary more than strong ones.
    """

    edges: tuple[float, ...]  # accuracy boundaries between consecutive groups
    residuals: tuple[tuple[float, ...], ...]  # per group, weakest first

    def group(self, accuracy: float) -> int:
        return int(np.searchsorted(self.edges, accuracy))

    def draw(self, accuracy: float, rng: np.random.Generator) -> float:
        pool = self.residuals[self.group(accuracy)]
        return pool[int(rng.integers(len(pool)))]

    def sd(self, accuracy: float) -> float:
        """The root mean square of the group's residuals: the normal law's equivalent spread."""
        return float(np.sqrt(np.mean(np.square(self.residuals[self.group(accuracy)]))))

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "residuals": [list(r) for r in self.residuals]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseModel:
        return cls(tuple(data["edges"]), tuple(tuple(r) for r in data["residuals"]))


class FeatureEncoder:
    """Architecture dicts of ``space`` to a fixed table of numbers (columns named in ``columns``)."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self._stage_knobs: dict[str, tuple[Any, ...] | None] = {}  # name -> choices (strings) or None (a number)
        for stage in space.stages:
            for block_knobs in stage.blocks.values():
                for name, knob in block_knobs.items():
                    if knob.searched and name != "depth":
                        self._stage_knobs[name] = _string_choices(knob.distribution)
        stage0, transition0 = space.stages[0], space.transitions[0]
        self._blocks = tuple(stage0.blocks)
        self._poolings = _string_choices(transition0.pooling.distribution) or ()
        self._stem = [name for name, knob in space.stem.items() if knob.searched]
        self.columns = self._names()

    def _names(self) -> list[str]:
        names = [f"stem.{name}" for name in self._stem] + ["num_stages"]
        for i in range(1, len(self.space.stages) + 1):
            names += [f"stage{i}.present", *(f"stage{i}.block={b}" for b in self._blocks), f"stage{i}.depth"]
            for name, choices in self._stage_knobs.items():
                names += [f"stage{i}.{name}"] if choices is None else [f"stage{i}.{name}={c}" for c in choices]
        for i in range(1, len(self.space.transitions) + 1):
            names += [f"transition{i}.present", f"transition{i}.compression"]
            names += [f"transition{i}.pooling={p}" for p in self._poolings]
        return [*names, "log10_params", "log10_macs"]

    def encode(self, architecture: dict[str, Any]) -> np.ndarray:
        """One architecture's row."""
        row = dict.fromkeys(self.columns, 0.0)
        for name in self._stem:
            row[f"stem.{name}"] = float(architecture["stem"][name])
        row["num_stages"] = float(len(architecture["stages"]))
        for i, stage in enumerate(architecture["stages"], start=1):
            row[f"stage{i}.present"] = 1.0
            row[f"stage{i}.block={stage['block']}"] = 1.0
            row[f"stage{i}.depth"] = float(stage["depth"])
            for name, choices in self._stage_knobs.items():
                if name in stage:
                    column = f"stage{i}.{name}" if choices is None else f"stage{i}.{name}={stage[name]}"
                    row[column] = 1.0 if choices is not None else float(stage[name])
        for i, transition in enumerate(architecture["transitions"], start=1):
            if transition is not None:
                row[f"transition{i}.present"] = 1.0
                row[f"transition{i}.compression"] = float(transition["compression"])
                row[f"transition{i}.pooling={transition['pooling']}"] = 1.0
        counts = count(Architecture.from_dict(architecture), self.space.input_size, self.space.num_classes)
        row["log10_params"], row["log10_macs"] = math.log10(counts.params), math.log10(counts.macs)
        return np.array([row[c] for c in self.columns])

    def table(self, architectures: Sequence[dict[str, Any]]) -> np.ndarray:
        return np.stack([self.encode(a) for a in architectures]) if architectures else np.zeros((0, len(self.columns)))


def _string_choices(distribution: Any) -> tuple[Any, ...] | None:
    """The choices of a categorical knob of strings (one-hot columns); None for a number."""
    if isinstance(distribution, Choice) and any(isinstance(v, str) for v in distribution.values):
        return tuple(distribution.values)
    return None


def _gp() -> RegressorMixin:
    # Matern 5/2 with one length scale per feature (ARD) on standardised features, plus
    # a white-noise term: the target is one noisy run per architecture.
    kernel = ConstantKernel(0.01, (1e-4, 1.0)) * Matern(nu=2.5, length_scale=3.0, length_scale_bounds=(0.1, 100.0))
    kernel += WhiteKernel(1e-3, (1e-6, 1e-1))
    return make_pipeline(
        StandardScaler(),
        GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=2, random_state=0),
    )


CANDIDATES: dict[str, Callable[[], RegressorMixin]] = {
    "ridge": lambda: make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13))),
    "random_forest_leaf1": lambda: RandomForestRegressor(
        n_estimators=300, min_samples_leaf=1, max_features=0.33, random_state=0
    ),
    "random_forest_leaf3": lambda: RandomForestRegressor(
        n_estimators=300, min_samples_leaf=3, max_features=0.33, random_state=0
    ),
    "gradient_boosting_d2": lambda: GradientBoostingRegressor(
        n_estimators=400, learning_rate=0.03, max_depth=2, subsample=0.8, loss="huber", random_state=0
    ),
    "gradient_boosting_d3": lambda: GradientBoostingRegressor(
        n_estimators=300, learning_rate=0.03, max_depth=3, subsample=0.8, loss="huber", random_state=0
    ),
    "gradient_boosting_d4": lambda: GradientBoostingRegressor(
        n_estimators=200, learning_rate=0.03, max_depth=4, subsample=0.8, loss="huber", random_state=0
    ),
    "gaussian_process": _gp,
}


def fit_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Spearman, Kendall, MAE and RMSE of ``predicted`` against ``truth``."""
    return {
        "spearman": float(stats.spearmanr(predicted, truth).statistic),
        "kendall": float(stats.kendalltau(predicted, truth).statistic),
        "mae": float(np.mean(np.abs(predicted - truth))),
        "rmse": float(np.sqrt(np.mean((predicted - truth) ** 2))),
        "n": len(truth),
    }


def cross_validate(
    make: Callable[[], RegressorMixin], x: np.ndarray, y: np.ndarray, *, folds: int, seed: int
) -> dict[str, float]:
    """Out-of-fold predictions of a fresh ``make()`` per fold, scored against ``y``."""
    predicted = np.empty_like(y)
    for train_index, test_index in KFold(folds, shuffle=True, random_state=seed).split(x):
        model = clone(make()).fit(x[train_index], y[train_index])
        predicted[test_index] = model.predict(x[test_index])
    return fit_scores(y, predicted)


def choose_regressor(
    x: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0, candidates: Sequence[str] | None = None
) -> tuple[str, dict[str, dict[str, float]]]:
    """The candidate with the lowest cross-validated MAE on (``x``, ``y``), and every candidate's scores."""
    scores = {name: cross_validate(CANDIDATES[name], x, y, folds=folds, seed=seed) for name in candidates or CANDIDATES}
    return min(scores, key=lambda name: scores[name]["mae"]), scores


# --- the noise and the report ----------------------------------------------------------


def measure_noise(observations: Sequence[Observation], *, bins: int = 2) -> dict[str, Any]:
    """Seed-to-seed spread of one run's validation accuracy, from architectures trained with several seeds.

    Only runs validated on the same split count (``SPLIT_SEED``), so the spread is that
    of a trial's seed (weights, training subset, order) within one study. Returns
    the pooled standard deviation with its 95% interval (chi-square), the mean
    absolute difference and the Spearman correlation between two seeds' runs, and
    the model the simulator draws from (``NoiseModel``): each run's deviation from
    its architecture's mean, scaled by sqrt(n / (n - 1)) so that its spread is a
    single run's, pooled in ``bins`` groups of architectures of equal count by
    mean accuracy.
    """
    by_key: dict[str, dict[int, float]] = {}
    for o in observations:
        if o.split_seed == SPLIT_SEED:
            by_key.setdefault(o.key, {})[o.seed] = o.accuracy
    groups = {key: runs for key, runs in by_key.items() if len(runs) >= 2}
    if not groups:
        raise ValueError("no architecture was trained with two seeds on the same split")
    means = {key: float(np.mean(list(runs.values()))) for key, runs in groups.items()}
    ordered = sorted(groups, key=lambda key: means[key])
    parts = [list(part) for part in np.array_split(np.array(ordered), min(bins, len(ordered)))]
    residuals = [
        tuple(
            (value - means[key]) * math.sqrt(len(groups[key]) / (len(groups[key]) - 1))
            for key in part
            for value in groups[key].values()
        )
        for part in parts
    ]
    edges = tuple((means[low[-1]] + means[high[0]]) / 2 for low, high in zip(parts, parts[1:]))
    model = NoiseModel(edges, residuals)
    sd, dof = _pooled_sd(list(groups.values()))
    pairs = [
        abs(a - b)
        for runs in groups.values()
        for i, a in enumerate(runs.values())
        for b in list(runs.values())[i + 1 :]
    ]
    seeds = sorted({s for runs in groups.values() for s in runs})
    shared = [(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1 :]]
    rhos = []
    for a, b in shared:
        both = [(runs[a], runs[b]) for runs in groups.values() if a in runs and b in runs]
        if len(both) >= 5:
            rhos.append(float(stats.spearmanr(*zip(*both)).statistic))
    every = np.concatenate([np.array(r) for r in residuals])
    return {
        "architectures": len(groups),
        "runs": sum(len(r) for r in groups.values()),
        "pooled_sd": sd,
        "pooled_sd_95ci": [
            sd * math.sqrt(dof / stats.chi2.ppf(0.975, dof)),
            sd * math.sqrt(dof / stats.chi2.ppf(0.025, dof)),
        ],
        "median_absolute_residual": float(np.median(np.abs(every))),
        "share_of_runs_off_by_over_0.05": float(np.mean(np.abs(every) > 0.05)),
        "seed_pair_mae": float(np.mean(pairs)),
        "seed_pair_spearman": float(np.mean(rhos)) if rhos else None,
        "seed_pair_spearman_pairs": len(rhos),
        "groups": [
            {
                "architectures": len(part),
                "mean_accuracy": [means[part[0]], means[part[-1]]],
                "sd": _pooled_sd([groups[k] for k in part])[0],
            }
            for part in parts
        ],
        "per_architecture": [
            {"key": k, "mean": means[k], "sd": float(np.std(list(groups[k].values()), ddof=1)), "runs": groups[k]}
            for k in ordered
        ],
        "model": model.to_dict(),
    }


def _pooled_sd(groups: Sequence[dict[int, float]]) -> tuple[float, int]:
    """The pooled within-group standard deviation and its degrees of freedom."""
    squares = sum(float(np.sum((np.array(list(g.values())) - np.mean(list(g.values()))) ** 2)) for g in groups)
    dof = sum(len(g) - 1 for g in groups)
    return math.sqrt(squares / dof), dof


def noise_ceiling(
    truth: np.ndarray, noise: NoiseModel, runs: np.ndarray, *, draws: int = 200, seed: int = 0
) -> dict[str, float]:
    """What a perfect surrogate would score against these targets, each the mean of ``runs`` noisy runs.

    The targets' spread is shrunk to that of noise-free accuracies (their
    variance less the noise's), noise is drawn anew from ``noise``, and
    Spearman and MAE are averaged over ``draws``: the bar no predictor clears
    on noisy targets, on average.
    """
    rng = np.random.default_rng(seed)
    spread = np.array([noise.sd(a) for a in truth]) / np.sqrt(runs)
    variance = float(np.var(truth))
    shrink = math.sqrt(max(0.0, variance - float(np.mean(spread**2))) / variance)
    latent = truth.mean() + (truth - truth.mean()) * shrink
    rhos, maes = [], []
    for _ in range(draws):
        deviation = np.array([np.mean([noise.draw(a, rng) for _ in range(int(n))]) for a, n in zip(latent, runs)])
        rhos.append(stats.spearmanr(latent, latent + deviation).statistic)
        maes.append(np.mean(np.abs(deviation)))
    return {"spearman": float(np.mean(rhos)), "mae": float(np.mean(maes))}


def origin(row: Row) -> str:
    """How an architecture was found: drawn uniformly from the space, or proposed by a sampler's model."""
    return "drawn at random" if row.drawn_at_random else "proposed by a model"


def fit_report(
    space: Space,
    *,
    committed: Sequence[Observation],
    trained: Sequence[Observation],
    test_share: float = 0.2,
    folds: int = 5,
    seed: int = 0,
    candidates: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Choose the regressor on the training architectures, score it on the held-out ones, measure the noise.

    The held-out share is drawn per origin (``origin``), so both are scored:
    a random search and a sampler's start-up visit the first kind, a
    converging sampler the second. A learning curve (held-out MAE and Spearman when fitting on a
    quarter, half, three quarters and all of the training architectures) says
    whether more trained architectures would help.
    """
    observations = [*committed, *trained]
    rows = rows_by_architecture(observations)
    noise = measure_noise(observations)
    model = NoiseModel.from_dict(noise["model"])
    encoder = FeatureEncoder(space)
    x, y = encoder.table([r.architecture for r in rows]), np.array([r.accuracy for r in rows])
    runs = np.array([r.runs for r in rows])
    origins = np.array([origin(r) for r in rows])
    rng = np.random.default_rng(seed)
    test = np.zeros(len(rows), dtype=bool)
    for name in sorted(set(origins)):
        members = rng.permutation(np.flatnonzero(origins == name))
        test[members[: round(test_share * len(members))]] = True
    chosen, cv = choose_regressor(x[~test], y[~test], folds=folds, seed=seed, candidates=candidates)
    fitted = CANDIDATES[chosen]().fit(x[~test], y[~test])
    predicted = fitted.predict(x[test])
    held_out: dict[str, Any] = {}
    params_column = encoder.columns.index("log10_params")
    for name, mask in [("all", np.ones(test.sum(), dtype=bool))] + [
        (o, origins[test] == o) for o in sorted(set(origins))
    ]:
        truth = y[test][mask]
        held_out[name] = fit_scores(truth, predicted[mask]) | {
            "params_spearman": float(stats.spearmanr(x[test][mask, params_column], truth).statistic),
            "noise_ceiling": noise_ceiling(truth, model, runs[test][mask], seed=seed),
        }
    learning = []
    order = rng.permutation(np.flatnonzero(~test))
    for share in (0.25, 0.5, 0.75, 1.0):
        part = np.sort(order[: round(share * len(order))])  # in row order: all of them is the model above
        guess = CANDIDATES[chosen]().fit(x[part], y[part]).predict(x[test])
        learning.append({"train_share": share, "train_architectures": len(part)} | fit_scores(y[test], guess))
    return {
        "space": space.name,
        "target": "validation accuracy after the space's budget (1 epoch on 20% of the training split, one-cycle)",
        "architectures": {
            "all": len(rows),
            **{o: int(np.sum(origins == o)) for o in sorted(set(origins))},
            "train": int(np.sum(~test)),
            "held_out": int(np.sum(test)),
        },
        "features": encoder.columns,
        "cross_validation": {"folds": folds, "candidates": cv},
        "chosen": chosen,
        "held_out": held_out,
        "learning_curve": learning,
        "noise": noise,
    }
