"""Pareto fronts and rankings, the one home of them: non-dominated sorting, crowding distance,
hypervolume and rank correlation (pure functions on numbers), and the rule that ranks a
study's trials by its objectives (``ranked_trials``), which every command, the report, the
progress line, the MO-ASHA pruner and the benchmarks use.

``_sorting`` and ``_correlation`` know nothing of Optuna; ``_study`` holds the rule,
``_table`` the study as one table.
"""

from search.pareto._correlation import MIN_RANK_PAIRS, kendall, spearman
from search.pareto._sorting import (
    crowding_distances,
    dominates,
    hypervolume,
    is_non_dominated,
    non_dominated_ranks,
    running_front_sizes,
    to_losses,
)
from search.pareto._study import (
    RankedTrial,
    candidates,
    front_size_history,
    front_trials,
    is_feasible,
    objective_names,
    quality_index,
    rank_trials,
    ranked_trials,
    study_directions,
    study_objectives,
)
from search.pareto._table import TRIAL_COLUMNS, front_frame, recorded_metrics, trials_frame

__all__ = [
    "MIN_RANK_PAIRS",
    "TRIAL_COLUMNS",
    "RankedTrial",
    "candidates",
    "crowding_distances",
    "dominates",
    "front_frame",
    "front_size_history",
    "front_trials",
    "hypervolume",
    "is_feasible",
    "is_non_dominated",
    "kendall",
    "non_dominated_ranks",
    "objective_names",
    "quality_index",
    "rank_trials",
    "ranked_trials",
    "recorded_metrics",
    "running_front_sizes",
    "spearman",
    "study_directions",
    "study_objectives",
    "to_losses",
    "trials_frame",
]
