"""What the simulator learns from: architectures of ``densenet_hybrid`` trained at the default budget.

Two sources, both read without training anything:

- the committed studies and caches (``committed_observations``): the headline's
  60-minute search, the search-efficiency journals and the fidelity panel's
  1-epoch-on-20% runs; a study counts only if its settings are the space's
  budget (``at_default_budget``), so MO-ASHA's runs on the whole split with a
  cosine schedule are left out;
- runs trained here (``TRAINED``, a JSON cache keyed by architecture and seed):
  seed replicates of committed architectures, which measure the seed-to-seed
  noise, and seeded random draws of the space, which cover what the searches'
  samplers left unvisited.

``train_missing`` trains what the cache lacks, one run at a time, saving each
as it ends, so a killed run resumes. Every run is a trial's training: the
space's budget with the run's seed for weights, subset and order, validated on
the tenth of the training split that ``search.run`` holds out with seed 0.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from evaluation import Architecture, build_model, count, train
from evaluation.data import DataSplits, load_dataset
from search.execution.run_data import VALIDATION_SIZE
from search.storage.records import TrialOutcome, architecture_key
from spaces import Space, load_space, precheck, sample_architecture

from result_cache import journal_to_read, load_cache, save_cache

__all__ = [
    "BUDGET_KEYS",
    "COMMITTED_JOURNALS",
    "FIDELITY",
    "Observation",
    "Row",
    "SPACE",
    "TRAINED",
    "at_default_budget",
    "committed_observations",
    "noise_plan",
    "random_plan",
    "rows_by_architecture",
    "trained_observations",
    "training_rows",
    "train_missing",
]

SPACE = "densenet_hybrid"
RESULTS = Path(__file__).resolve().parent / "results"
COMMITTED_JOURNALS = (
    RESULTS / "headline" / "journal.log",
    *sorted(path.with_suffix("") for path in (RESULTS / "search_efficiency").glob("*.log.gz")),
)  # committed packed (X.log.gz); read through result_cache.journal_to_read
FIDELITY = RESULTS / "fidelity.json"
FIDELITY_RUN = "1ep_20pct"  # the panel's run at the space's budget
TRAINED = RESULTS / "simulator" / "trained.json"
BUDGET_KEYS = ("epochs", "train_fraction", "batch_size", "lr", "schedule")
SPLIT_SEED = 0  # the validation split of the headline, of the fidelity panel and of every run here
# The first trials each sampler of the committed studies drew at random: TPE's and GP's start-up
# (search.samplers: min(10, trials // 3) with trials in the thousands) and NSGA-II's first generation.
RANDOM_START = {"tpe": 10, "gp": 10, "nsga2": 20, "random": 1 << 30}


@dataclasses.dataclass(frozen=True)
class Observation:
    """One architecture trained once at the default budget: its validation accuracy and where it came from."""

    architecture: dict[str, Any]
    accuracy: float
    source: str  # "headline", "tpe-s0", "fidelity", "noise", "random", ...
    seed: int  # the training seed (weights, subset, order)
    split_seed: int  # the seed of the validation split
    drawn_at_random: bool  # drawn uniformly from the space (a sampler's start-up, the panel, a random draw here)

    @property
    def key(self) -> str:
        return architecture_key(self.architecture)


def at_default_budget(training: dict[str, Any], space: Space) -> bool:
    """Whether a study's stored training settings are the space's own budget (epochs, fraction, batch, rate, schedule)."""
    budget = dataclasses.asdict(space.training)
    return all(training.get(key) == budget[key] for key in BUDGET_KEYS)


def committed_observations(
    space: Space, *, journals: Iterable[Path] = COMMITTED_JOURNALS, fidelity: Path | None = FIDELITY
) -> tuple[list[Observation], list[dict[str, Any]]]:
    """Every architecture the committed studies trained at the default budget, and what was read from each source.

    A trial counts when its outcome is ``trained`` (a duplicate copies another
    trial's values; a rejected, pruned or diverged one has no accuracy of its own).
    """
    observations: list[Observation] = []
    sources: list[dict[str, Any]] = []
    for path in journals:
        with journal_to_read(path) as readable:
            storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(readable)))
            for summary in optuna.get_all_study_summaries(storage):
                study = optuna.load_study(study_name=summary.study_name, storage=storage)
                settings = study.user_attrs.get("settings", {})
                training = settings.get("training", {})
                used = at_default_budget(training, space) and settings.get("space") == space.name
                found = [
                    Observation(
                        architecture=trial.user_attrs["architecture"],
                        accuracy=float(trial.values[0]),
                        source=summary.study_name,
                        seed=int(training["seed"]) + trial.number,  # search.execution.objective's per-trial seed
                        split_seed=int(settings["seed"]),
                        drawn_at_random=trial.number < RANDOM_START.get(settings.get("sampler"), 0),
                    )
                    for trial in study.get_trials(deepcopy=False)
                    if trial.user_attrs.get("outcome") == TrialOutcome.TRAINED and trial.values
                ]
                if used:
                    observations += found
                sources.append(
                    {
                        "source": summary.study_name,
                        "file": str(path.relative_to(RESULTS.parent.parent)),
                        "training": {key: training.get(key) for key in BUDGET_KEYS},
                        "used": used,
                        "trained": len(found),
                    }
                )
    if fidelity is not None and fidelity.is_file():
        panel = json.loads(fidelity.read_text())
        found = [
            Observation(
                architecture=entry["architecture"],
                accuracy=float(entry["runs"][FIDELITY_RUN]["val_accuracy"]),
                source="fidelity",
                seed=int(entry["runs"][FIDELITY_RUN]["settings"]["seed"]),
                split_seed=int(panel["settings"]["seed"]),
                drawn_at_random=name.startswith("sample_"),  # not the space's baselines
            )
            for name, entry in panel["panel"].items()
            if entry["runs"].get(FIDELITY_RUN, {}).get("val_accuracy") is not None
        ]
        settings = next(iter(panel["panel"].values()))["runs"][FIDELITY_RUN]["settings"]
        used = at_default_budget(settings, space)
        observations += found if used else []
        sources.append(
            {
                "source": "fidelity",
                "file": str(fidelity.relative_to(RESULTS.parent.parent)),
                "training": {key: settings.get(key) for key in BUDGET_KEYS},
                "used": used,
                "trained": len(found),
            }
        )
    return observations, sources


def trained_observations(cache: dict[str, Any]) -> list[Observation]:
    """The runs trained here, from the cache of ``train_missing``."""
    return [
        Observation(
            architecture=run["architecture"],
            accuracy=float(run["val_accuracy"]),
            source=run["purpose"],
            seed=int(run["seed"]),
            split_seed=SPLIT_SEED,
            drawn_at_random=run["purpose"] == "random",
        )
        for run in cache.get("runs", {}).values()
        if run.get("val_accuracy") is not None
    ]


@dataclasses.dataclass(frozen=True)
class Row:
    """One architecture: the mean validation accuracy of its runs, how many there were, and where they came from."""

    key: str
    architecture: dict[str, Any]
    accuracy: float
    runs: int
    sources: tuple[str, ...]
    drawn_at_random: bool  # any of its runs was of a uniform draw of the space


def rows_by_architecture(observations: Iterable[Observation]) -> list[Row]:
    """One row per architecture, ordered by key.

    A run seen twice (the same architecture, training seed and split, as the
    search-efficiency methods of one seed share their first random trials) counts once.
    """
    runs: dict[str, dict[tuple[int, int], Observation]] = {}
    random: set[str] = set()
    for o in observations:
        runs.setdefault(o.key, {}).setdefault((o.seed, o.split_seed), o)
        if o.drawn_at_random:
            random.add(o.key)
    rows = []
    for key in sorted(runs):
        found = list(runs[key].values())
        rows.append(
            Row(
                key=key,
                architecture=found[0].architecture,
                accuracy=float(np.mean([o.accuracy for o in found])),
                runs=len(found),
                sources=tuple(sorted({o.source for o in found})),
                drawn_at_random=key in random,
            )
        )
    return rows


def training_rows(space: Space) -> list[Row]:
    """Every architecture the simulator learns from: the committed ones and those trained here, one row each."""
    committed, _ = committed_observations(space)
    return rows_by_architecture(committed + trained_observations(load_cache(TRAINED, {})))


# --- what to train -------------------------------------------------------------------


def noise_plan(
    observations: list[Observation], *, architectures: int, seeds: Iterable[int], seed: int = 0
) -> list[tuple[str, dict[str, Any], int]]:
    """(purpose, architecture, seed) runs that replicate ``architectures`` committed ones, spread over accuracy.

    The committed architectures are sorted by their recorded accuracy and picked at
    evenly spaced quantiles (with a seeded jitter), so the noise is measured on weak
    and strong models alike: a short one-cycle run may be noisier where it barely learns.
    """
    unique = {o.key: o for o in sorted(observations, key=lambda o: (o.source, o.seed))}
    ordered = sorted(unique.values(), key=lambda o: (o.accuracy, o.key))
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, len(ordered), architectures + 1).astype(int)
    picks = [ordered[int(rng.integers(low, max(high, low + 1)))] for low, high in zip(edges[:-1], edges[1:])]
    # In a seeded order, so a plan cut short has measured weak and strong models alike.
    return [("noise", picks[i].architecture, s) for i in rng.permutation(len(picks)) for s in seeds]


def random_plan(space: Space, known: set[str], *, count_: int, seed: int) -> list[tuple[str, dict[str, Any], int]]:
    """(purpose, architecture, seed) runs of ``count_`` seeded random architectures, as a random search draws them.

    Drawn with Optuna's RandomSampler through ``spaces.sample_architecture``;
    one that breaks a constraint (a search would not train it) or is already
    known is skipped. Draw ``i`` trains with seed ``seed + i``.
    """
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    plan: list[tuple[str, dict[str, Any], int]] = []
    drawn = 0
    while len(plan) < count_:
        arch = sample_architecture(space, study.ask())
        drawn += 1
        key = architecture_key(arch.to_dict())
        if precheck(space, arch) is None and key not in known:
            known.add(key)
            plan.append(("random", arch.to_dict(), seed + drawn))
    return plan


# --- training ------------------------------------------------------------------------


def run_key(arch: dict[str, Any], seed: int) -> str:
    return f"{architecture_key(arch)}/seed{seed}"


def train_run(space: Space, data: DataSplits, arch: dict[str, Any], seed: int) -> dict[str, Any]:
    """One trial's training of ``arch`` at the space's budget with ``seed``, as search.execution.objective does it."""
    config = space.training.config(seed=seed, device="cpu")
    architecture = Architecture.from_dict(arch)
    counts = count(architecture, space.input_size, space.num_classes)
    torch.manual_seed(seed)
    model = build_model(architecture, space.input_size, space.num_classes)
    started = time.perf_counter()
    result = train(model, data, config)
    return {
        "architecture": arch,
        "seed": seed,
        "val_accuracy": result.val_accuracies[-1] if not result.diverged else None,
        "diverged": result.diverged,
        "params": counts.params,
        "macs": counts.macs,
        "seconds": time.perf_counter() - started,
        "settings": {key: getattr(config, key) for key in (*BUDGET_KEYS, "seed")},
    }


def train_missing(
    plan: list[tuple[str, dict[str, Any], int]],
    *,
    out: Path,
    log: Callable[[str], None],
    shard: tuple[int, int] = (0, 1),
) -> dict[str, Any]:
    """Train every planned (architecture, seed) the cache at ``out`` lacks, saving each run as it ends.

    ``shard`` (i, n): this process takes every n-th run of the plan from the i-th,
    so n processes side by side share it.
    """
    cache = load_cache(out, {"runs": {}})
    index, count_ = shard
    mine = plan[index::count_]
    missing = [(purpose, arch, seed) for purpose, arch, seed in mine if run_key(arch, seed) not in cache["runs"]]
    if not missing:
        return cache
    space = load_space(SPACE)
    data = load_dataset(space.dataset, validation_size=VALIDATION_SIZE, seed=SPLIT_SEED)
    for done, (purpose, arch, seed) in enumerate(missing, start=1):
        run = train_run(space, data, arch, seed) | {"purpose": purpose}
        cache["runs"][run_key(arch, seed)] = run
        save_cache(out, cache)
        log(f"[{done}/{len(missing)}] {purpose} seed {seed}: val {run['val_accuracy']} in {run['seconds']:.0f} s")
    return cache
