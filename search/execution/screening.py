"""``--screen K``: score K candidate architectures per trial at initialisation, train the best.

Each trial slot considers K candidates. The first is the one the trial's own
sampler proposes; the other K - 1 are drawn uniformly from the space by a
``RandomSampler`` seeded from the trial's seed (the run's ``--seed`` plus the
trial number), so a screened study repeats from its seed. Every candidate is
built with the weights the trial would train from and scored by every
zero-cost proxy (``evaluation.proxies``) on the trial's proxy batch; one that
cannot be built or breaks a constraint known before training is never chosen
unless all are. The best by ``screen_by``, a proxy or ``vote`` (the lowest
mean rank across the proxies that vote, ``Proxy.votes``; ties go to the
earlier candidate, so to the sampler's own), becomes the trial's architecture.

What keeps the samplers learning from what was trained: the sampler's
proposal is asked without storing it on the trial (``Trial.relative_params``
and the sampler's ``sample_independent``, as ``Trial`` itself asks them), then
the chosen candidate's parameters are fixed on the trial the way
``study.enqueue_trial`` fixes a queued trial's (``fixed_params``), before the
space is sampled. So the trial's parameters are the trained architecture,
the study holds one trial per slot (the budget counts as without screening),
and the candidates that lost are recorded on the trial (user attribute
``screened``) but are no trials: no sampler sees them, so none learns from an
architecture that was not trained. Random candidates leave the sampler's own
random state alone. A trial whose parameters were set before it started (an
enqueued architecture, a retried trial) is trained as asked, not screened.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from evaluation import Architecture, ArchitectureError, build_model
from evaluation.data import DataSplits
from evaluation.proxies import PROXIES, measure_proxies, proxy_batch
from evaluation.training import TrainConfig, resolve_device
from search.errors import UsageError
from search.storage._optuna import fix_params, fixed_params, stored_trial
from search.storage.records import architecture_key
from spaces import Space, precheck, sample_architecture

__all__ = [
    "SCREENED_ATTR",
    "SCREENED_BY_ATTR",
    "SCREEN_BY",
    "VOTE",
    "Candidate",
    "Screening",
    "check_screening",
    "choose",
    "screen_trial",
]

VOTE = "vote"
SCREEN_BY = (*PROXIES, VOTE)
SCREENED_ATTR = "screened"
SCREENED_BY_ATTR = "screened_by"
# Mixed into the trial's seed for the random candidates, so that their stream is not
# the one a RandomSampler study seeded with --seed draws the trials' own proposals from.
_RANDOM_STREAM = 0x5C4EE7


@dataclass
class Candidate:
    """One architecture considered for a trial slot, with its proxy scores at initialisation."""

    source: str  # "sampler": the trial's sampler proposed it; "random": drawn from the space
    params: dict[str, Any]
    architecture: Architecture | None
    reason: str | None = None  # why it may not be trained: it cannot be built, or breaks a constraint
    scores: dict[str, float | None] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # proxy -> why its score is None

    def to_attr(self, *, chosen: bool) -> dict[str, Any]:
        """The candidate as stored in the trial's ``screened`` list."""
        entry: dict[str, Any] = {"source": self.source, "chosen": chosen, "scores": self.scores}
        if self.architecture is not None:
            entry["architecture"] = self.architecture.to_dict()
            entry["key"] = architecture_key(entry["architecture"])
        if self.reason is not None:
            entry["reason"] = self.reason
        if self.failures:
            entry["failures"] = self.failures
        return entry


@dataclass(frozen=True)
class Screening:
    """``--screen K --screen-by P``: ``count`` candidates per trial, the best by ``by`` trained.

    ``by`` is a proxy of ``evaluation.proxies.PROXIES`` or ``vote`` (the
    lowest mean rank across proxies); ``count`` 1 trains the sampler's
    proposal as it comes. A request that cannot run is refused when made.
    """

    count: int = 1
    by: str = VOTE

    def __post_init__(self) -> None:
        check_screening(self.count, self.by)

    @property
    def active(self) -> bool:
        return self.count > 1


def check_screening(screen: int, screen_by: str) -> None:
    """Refuse a screening request that cannot run, before anything starts."""
    if isinstance(screen, bool) or not isinstance(screen, int) or screen < 1:
        raise UsageError(f"screen must be >= 1, got {screen!r}")
    if screen_by not in SCREEN_BY:
        raise UsageError(f"unknown screen_by {screen_by!r}; expected one of {', '.join(SCREEN_BY)}")


def screen_trial(
    trial: optuna.Trial, space: Space, data: DataSplits, config: TrainConfig, *, count: int, by: str
) -> list[Candidate] | None:
    """Fix ``trial``'s parameters to the best of ``count`` candidates by ``by``; record them all.

    ``config`` is the trial's own (its seed). Returns the candidates, or None
    for a trial whose parameters were set before (enqueued or retried: it is
    trained as asked).
    """
    if trial.params or fixed_params(trial):
        return None
    study = trial.study
    frozen = copy.deepcopy(stored_trial(study, trial))  # a copy: it fills in as knobs are picked
    candidates = [_candidate("sampler", space, _SamplerPick(trial, frozen))]
    random = optuna.samplers.RandomSampler(seed=_random_seed(config.seed))
    for _ in range(count - 1):
        candidates.append(
            _candidate("random", space, lambda name, d: random.sample_independent(study, frozen, name, d))
        )
    images, labels = proxy_batch(data, seed=config.seed, resize=config.resize, device=resolve_device(config.device))
    for candidate in candidates:
        _score(candidate, space, images, labels, seed=config.seed)
    chosen = choose(candidates, by)
    fix_params(trial, candidates[chosen].params)
    trial.set_user_attr(SCREENED_ATTR, [c.to_attr(chosen=i == chosen) for i, c in enumerate(candidates)])
    trial.set_user_attr(SCREENED_BY_ATTR, by)
    return candidates


def choose(candidates: Sequence[Candidate], by: str) -> int:
    """The index of the best trainable candidate by proxy ``by`` or by ``vote``; 0 when none is trainable.

    A missing score ranks last; ties go to the lower index.
    """
    trainable = [i for i, c in enumerate(candidates) if c.reason is None]
    if not trainable:
        return 0
    names = [name for name, proxy in PROXIES.items() if proxy.votes] if by == VOTE else [by]
    ranks = {i: 0.0 for i in trainable}
    for name in names:
        for i, rank in _ranks([candidates[i].scores.get(name) for i in trainable], PROXIES[name].higher_is_better):
            ranks[trainable[i]] += rank
    return min(trainable, key=lambda i: (ranks[i], i))


def _ranks(values: list[float | None], higher_is_better: bool) -> list[tuple[int, float]]:
    """(position, rank) of each value, 1 the best, ties sharing their mean rank, None last."""
    sign = 1.0 if higher_is_better else -1.0
    keys = [-np.inf if v is None else sign * v for v in values]
    return [
        (i, 1 + sum(other > key for other in keys) + 0.5 * (sum(other == key for other in keys) - 1))
        for i, key in enumerate(keys)
    ]


class _Proposal:
    """The three ``suggest`` calls of a trial, answered by ``pick`` and stored nowhere but ``params``.

    Values are converted as ``optuna.Trial`` converts them, so fixing them on a
    trial later gives the same architecture.
    """

    def __init__(self, pick: Callable[[str, BaseDistribution], Any]) -> None:
        self._pick = pick
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._suggest(name, CategoricalDistribution(choices))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return int(self._suggest(name, IntDistribution(low, high, log=log, step=step)))

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return float(self._suggest(name, FloatDistribution(low, high, log=log, step=step)))

    def _suggest(self, name: str, distribution: BaseDistribution) -> Any:
        if name not in self.params:  # a shared knob asked again keeps its first value, as on a trial
            value = _single_value(distribution) if distribution.single() else self._pick(name, distribution)
            if isinstance(distribution, IntDistribution):
                value = int(value)
            elif isinstance(distribution, FloatDistribution):
                value = float(value)
            self.params[name] = value
        return self.params[name]


class _SamplerPick:
    """What ``trial``'s sampler proposes for each knob, asked as ``optuna.Trial`` asks it but not stored."""

    def __init__(self, trial: optuna.Trial, frozen: optuna.trial.FrozenTrial) -> None:
        self.trial, self.frozen = trial, frozen

    def __call__(self, name: str, distribution: BaseDistribution) -> Any:
        relative = self.trial.relative_params  # the sampler's joint proposal, computed once per trial
        space = self.trial.relative_search_space or {}
        if name in relative and space.get(name) == distribution:
            value = relative[name]
        else:
            study = self.trial.study
            value = study.sampler.sample_independent(study, self.frozen, name, distribution)
        # Later knobs see the earlier ones, as on a trial.
        self.frozen.params[name] = value
        self.frozen.distributions[name] = distribution
        return value


def _candidate(source: str, space: Space, pick: Callable[[str, BaseDistribution], Any]) -> Candidate:
    proposal = _Proposal(pick)
    try:
        architecture: Architecture | None = sample_architecture(space, proposal)
    except ArchitectureError as error:
        return Candidate(source, proposal.params, None, reason=str(error))
    return Candidate(source, proposal.params, architecture)


def _score(candidate: Candidate, space: Space, images: torch.Tensor, labels: torch.Tensor, *, seed: int) -> None:
    """Fill in the candidate's scores, or the reason it cannot be trained."""
    if candidate.architecture is None:
        return
    candidate.reason = precheck(space, candidate.architecture)
    if candidate.reason is not None:
        return
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # the weights the trial would train from
        model = build_model(candidate.architecture, *space.model_shape())
    candidate.scores, candidate.failures = measure_proxies(model, images, labels)


def _random_seed(seed: int) -> int:
    return int(np.random.SeedSequence([seed % 2**64, _RANDOM_STREAM]).generate_state(1)[0])


def _single_value(distribution: BaseDistribution) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[0]
    if isinstance(distribution, IntDistribution | FloatDistribution):
        return distribution.low
    raise TypeError(f"no single value of {distribution!r}: Optuna has no other kind of distribution")
