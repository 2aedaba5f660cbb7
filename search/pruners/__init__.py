"""Stopping trials early: multi-objective asynchronous successive halving (MO-ASHA), and the explicit pruner.

A trial's training budget (the images a full run sees, ``planned_images``) is
cut into rungs: ``min_fraction`` of it, then ``eta`` times more, up to the
whole (1/9, 1/3 and all of it with the defaults). At each rung below the
whole, the trial validates (mid-epoch if need be) and its *point* is formed:
the space's objectives, with the accuracy at that rung and the costs known
before training (MACs, params, latency). After Schmucker et al.,
"Multi-objective Asynchronous Successive Halving" (2021), the trial continues
only if its point is among the best ``floor(n / eta)`` of the ``n`` points
recorded at that rung, itself included, ranked by non-dominated sorting.

Ties within a front are broken by crowding distance (NSGA-II's: the points at
the ends of the front, such as the most accurate and the cheapest network,
first; then those in its sparsest parts), then by trial number, earlier first,
so a ranking is deterministic. An objective whose values all agree (or are
not finite) adds nothing to the distance, so identical points rank by trial
number alone.

Asynchronous, as ASHA: a trial is judged once per rung, when it gets there,
against the points recorded so far; a trial that continued is never stopped
afterwards because better ones arrived later. With fewer than ``eta`` points
at a rung the quota ``floor(n / eta)`` is 0, and the trial *continues*: the
stopping variant of ASHA cannot pause a trial until peers arrive, and a final
decision on one or two points would be a decision on noise (it would also
stop the first trials of every study, which the samplers' start-up needs).

Everything lives in the study's storage, so workers and machines sharing a
study decide alike and every decision replays from the storage alone
(``replay_decisions``): a trial stores its costs before training, its
accuracy at each rung (``rung_accuracies``, ``{images: accuracy}``) before
its decision, and then the decision (``rung_decisions``: rung, images,
continued or not, rank, the trial numbers it was compared with, and why).
Points are read from trials in any state: running, complete, pruned, failed.

A stopped trial ends PRUNED, with outcome ``pruned`` and its rung and reason,
and keeps its rung accuracies. What the samplers learn from it (Optuna 5's
source): TPE takes COMPLETE and PRUNED trials; in a multi-objective study a
pruned trial carries no values and no intermediate values (``Trial.report``
is single-objective only), so TPE puts it among the trials it models as
"bad" (the above group, unless fewer completed trials than its below quota
exist), which is what a trial outside the top 1/eta of its rung is; in a
single-objective study rung accuracies are also reported as intermediate
values, and TPE ranks pruned trials by the rung they reached, then by that
accuracy. NSGA-II (its population) and the GP sampler (its fitted model)
read COMPLETE trials only, and learn nothing from a pruned one. Telling a
stopped trial COMPLETE with its last rung accuracy would feed them, but it
would also put low-fidelity accuracies beside full ones on the Pareto front;
the issue asks for PRUNED, and the default sampler (TPE) learns from it.

Single-objective spaces may take Optuna's own pruners instead (``median``,
``hyperband``), checked at the same rungs with the accuracy reported at step
= images seen; ``none`` checks nothing. The pruner is always chosen
explicitly and stored with the study: never Optuna's default MedianPruner.

The rules are a table (``STOPPING_RULES``, ``search.pruners.config``): a new
rule, judged at rungs or after each epoch, is a new entry (``stopping_rule``).
"""

from search.pruners.budget import BudgetSpent, budget_spent, images_saved_fraction
from search.pruners.config import (
    RUNG_ACCURACIES,
    RUNG_DECISIONS,
    STOPPING_RULES,
    Pruning,
    StoppingRule,
    stopping_rule,
)
from search.pruners.moasha import RungPoint, Verdict, decide, rank_points
from search.pruners.replay import (
    Replayed,
    RungDecision,
    recorded_decisions,
    recorded_rungs,
    replay_decisions,
    rung_point,
    study_objectives,
)
from search.pruners.rules import PRUNERS, Asha, Hyperband, Median, NoStopping
from search.pruners.watch import Pruner, RungWatch

__all__ = [
    "PRUNERS",
    "RUNG_ACCURACIES",
    "RUNG_DECISIONS",
    "STOPPING_RULES",
    "Asha",
    "BudgetSpent",
    "Hyperband",
    "Median",
    "NoStopping",
    "Pruner",
    "Pruning",
    "Replayed",
    "RungDecision",
    "RungPoint",
    "RungWatch",
    "StoppingRule",
    "Verdict",
    "budget_spent",
    "decide",
    "images_saved_fraction",
    "rank_points",
    "recorded_decisions",
    "recorded_rungs",
    "replay_decisions",
    "rung_point",
    "stopping_rule",
    "study_objectives",
]
