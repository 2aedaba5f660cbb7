"""``search run``: an Optuna study over a search space, trained on real data.

Flags in, one call to ``search.run_search``, progress and the outcome out on stderr.
"""

from __future__ import annotations

import argparse
import signal
import sys
from fractions import Fraction

import optuna
from optuna.trial import FrozenTrial

from evaluation.data import DATASETS, DataSplits
from evaluation.images import SourceOptions
from search.commands._common import (
    add_memory_limit_argument,
    checked_number,
    device_name,
    non_negative_int,
    positive_float,
    positive_int,
    random_seed,
    unit_fraction,
)
from search.commands._progress import Progress
from search.commands.data import add_source_arguments, source_options
from search.errors import SearchInterrupted, exit_code_of
from search.execution.distinct import REPEATS_BEFORE_FALLBACK, counted_trials
from search.execution.plan import Budget, DataSpec, StudySpec, Workers
from search.execution.screening import SCREEN_BY, VOTE, Screening
from search.pruners import PRUNERS, Pruning
from search.run import DEFAULT_PRUNER, DEFAULT_TRIALS, GPU_EPOCH_FACTOR, RunPlan, run_search
from search.samplers import GRID_LIMIT, SAMPLERS, SamplerSpec
from search.storage.leases import LeasePolicy

DESCRIPTION = f"""\
Run (or resume) a multi-objective Optuna study over a search space.

Each trial samples an architecture, refuses it before training if it cannot be
built or breaks a constraint of the space (params, MACs, latency), profiles it
(fvcore MACs, latency), trains it briefly on the space's data set and records
validation accuracy per epoch. The study lives in studies/STUDY/ (SQLite)
unless --storage is given; running the same command again resumes it. Ctrl-C
stops cleanly: every finished trial is kept.

Distinct trials: --trials N is N distinct architectures evaluated, earlier
runs and every worker included. A proposal of an architecture the study already
holds is not trained again: it takes the recorded values (outcome duplicate),
so the sampler learns them, counts nothing and the sampler is asked again. A
proposal refused before training (it cannot be built, or breaks a constraint)
counts: it is a distinct architecture the sampler had to learn about. After
--fallback-after such repeats in a row the sampler has converged: the run says
so and the next trial explores a random architecture the study does not hold
(user attribute proposed_by: fallback-random). The run stops early, saying why,
when the space has no architecture left to evaluate.

Warm start: --warm-start STUDY (a study under studies/, or NAME@URL in any
storage) begins a new study with that study's finished trials, one per
architecture: the sampler models them from the first trial, and their
architectures are copied rather than trained again, but they count toward no
--trials. The study must be of the same space, objectives, data set and
training budget (its seed and device may differ).

Budget: by default {DEFAULT_TRIALS} trials with the space's training budget
(densenet_hybrid: 1 epoch on 20% of Fashion-MNIST's training split), which on
a 2-core CPU took about 4 minutes (under 15 is the aim). On a GPU (--device auto finds it) each
trial uses the whole training set and {GPU_EPOCH_FACTOR}x the epochs. Scale with
--trials, --epochs, --train-fraction and --timeout.

Samplers: tpe (default), nsga2, random, gp, and grid: every point of a small
space once (at most {GRID_LIMIT:,} grid points, and --trials at most that many).

Pruning: --pruner asha stops a trial at a rung of its budget (--min-rung,
--eta) when its accuracy there and its costs rank outside the top 1/eta of the
trials recorded at that rung (multi-objective asynchronous successive halving);
median and hyperband are Optuna's, for single-objective spaces. Default: none.

Parallel: --workers N runs N processes on this machine against the study (a
journal file, studies/STUDY/journal.log); on several machines, run the same
command on each with one --storage postgresql://... URL. --trials is the
study's total across all of them. A worker killed mid-trial leaves its trial
to be failed by another after --grace-period seconds without a heartbeat.

Stopping: Ctrl-C, or SIGTERM (what Slurm and Kubernetes send before they
kill), fails the running trial with its reason and exits (130 after Ctrl-C,
143 after SIGTERM); every finished trial is kept and nothing is left running.
A trial cut by SIGTERM has its parameters queued again: the next start trains them.

Your own images: --data folder:PATH (one sub-folder per class, or train/,
val/ and test/ folders of them), csv:FILE (path, label, optional split
columns) or npz:FILE, with the space made for them:

    python -m search run --space images --data folder:PATH

Its input (side, channels) and class count come from the images, its stem
from the side. The files are decoded once into a cache (progress on a
terminal; a second run opens it at once); a file that cannot be decoded is
skipped, counted on the run's first lines and listed beside the cache
(--strict refuses the data set instead). The split (train, validation, test)
is the data set's own and recorded in the study: trials validate on the
validation images, and only finalize tests, on the test images.
'python -m search data SOURCE' shows what the toolkit sees first.

Zero-cost proxies (synflow, NASWOT, grad_norm, SNIP) are recorded on every
trained trial. --screen K scores K candidate architectures per trial with
them at initialisation (the sampler's proposal and K-1 random ones) and
trains the best by --screen-by; every candidate's scores are recorded.
"""


class RunCommand:
    help = "Run or resume a search; the Pareto front is kept in the study."
    description = DESCRIPTION

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--space",
            default="densenet_hybrid",
            help="A built-in space name or a YAML file (default: densenet_hybrid).",
        )
        parser.add_argument("--study", help="Study name (default: the space's name); its folder is studies/STUDY/.")
        parser.add_argument(
            "--storage",
            metavar="URL",
            help="Any Optuna storage URL (postgresql://... for many machines) or journal:PATH, "
            "instead of studies/STUDY/study.db (journal.log with --workers).",
        )
        parser.add_argument(
            "--warm-start",
            metavar="STUDY",
            help="Begin a new study with the finished trials of STUDY (a name under studies/, or NAME@URL), "
            "a study of the same space, objectives, data set and training budget; they count toward no --trials.",
        )
        parser.add_argument(
            "--workers",
            type=positive_int,
            default=1,
            help="Worker processes on this machine, sharing the CPU threads or one GPU each (default: 1).",
        )
        parser.add_argument(
            "--heartbeat-interval",
            metavar="S",
            type=positive_int,
            default=LeasePolicy.heartbeat_interval,
            help=f"Seconds between heartbeats of a running trial (default: {LeasePolicy.heartbeat_interval}).",
        )
        parser.add_argument(
            "--grace-period",
            metavar="S",
            type=positive_int,
            default=LeasePolicy.grace_period,
            help="Seconds without a heartbeat after which a running trial is failed as stale "
            f"(default: {LeasePolicy.grace_period}).",
        )
        parser.add_argument(
            "--retry-failed",
            metavar="N",
            type=non_negative_int,
            default=0,
            help="Queue a stale trial's parameters again, up to N times (default: 0).",
        )
        parser.add_argument(
            "--trials",
            type=positive_int,
            default=DEFAULT_TRIALS,
            help="Distinct architectures to evaluate in all, counting earlier runs; copies of evaluated "
            f"architectures do not count, ones refused before training do (default: {DEFAULT_TRIALS}).",
        )
        parser.add_argument("--timeout", type=positive_float, help="Stop starting new trials after this many seconds.")
        parser.add_argument(
            "--sampler",
            choices=tuple(SAMPLERS),
            default="tpe",
            help="Optuna sampler (default: tpe, multivariate, constant liar; gp: Gaussian-process "
            "Bayesian optimisation, for few and expensive trials; grid: every point of a small space).",
        )
        parser.add_argument(
            "--fallback-after",
            metavar="K",
            type=non_negative_int,
            default=REPEATS_BEFORE_FALLBACK,
            help="After K proposals in a row of architectures the study already holds, explore a random "
            f"architecture instead; 0: never (default: {REPEATS_BEFORE_FALLBACK}).",
        )
        parser.add_argument(
            "--pruner",
            choices=PRUNERS,
            default=DEFAULT_PRUNER,
            help="Stop trials early at rungs of their training budget: asha (multi-objective asynchronous "
            "successive halving, any space), median or hyperband (Optuna's, single-objective spaces), or "
            f"none (default: {DEFAULT_PRUNER}; on the default CPU budget the first rung is at chance, see "
            "README). With rungs a one-cycle schedule becomes cosine. TPE learns from stopped trials; NSGA-II "
            "and GP use completed ones only.",
        )
        parser.add_argument(
            "--min-rung",
            metavar="FRACTION",
            type=_rung_fraction,
            default=Fraction(1, 9),
            help="The first rung, as a fraction of a trial's training budget, e.g. 1/9 or 0.25 (default: 1/9).",
        )
        parser.add_argument(
            "--eta",
            type=positive_int,
            default=3,
            help="Each rung is ETA times the last, and 1/ETA of the trials at a rung continue (default: 3).",
        )
        parser.add_argument(
            "--data",
            "--dataset",
            dest="data",
            metavar="SOURCE",
            help="The images to search on instead of the space's: folder:PATH (one sub-folder per class, or "
            "train/, val/, test/ folders of them), csv:FILE (path and label columns, optional split), npz:FILE, "
            f"or a built-in ({', '.join(DATASETS)}); the input size and class count follow it. "
            "See: python -m search data SOURCE.",
        )
        parser.add_argument(
            "--data-root",
            help="Folder holding the data set files (else $SEARCH_DATA_DIR, Debian's copy, torchvision's cache).",
        )
        parser.add_argument(
            "--epochs", type=positive_int, help="Training epochs per trial instead of the space's budget."
        )
        parser.add_argument(
            "--train-fraction", type=unit_fraction, help="Fraction of the training set per trial, in (0, 1]."
        )
        parser.add_argument(
            "--seed", type=random_seed, default=0, help="Seed of the sampler and of each trial's training (default: 0)."
        )
        parser.add_argument(
            "--device",
            type=device_name,
            default="auto",
            help="Training device: auto, cpu, cuda or cuda:N (default: auto, CUDA when available).",
        )
        parser.add_argument(
            "--enqueue-preset",
            metavar="NAME",
            action="append",
            default=[],
            help="Evaluate a known architecture first: a baseline of the space or a preset (repeatable).",
        )
        parser.add_argument(
            "--no-report", action="store_true", help="Do not regenerate studies/STUDY/report.html at the end."
        )
        parser.add_argument(
            "--screen",
            metavar="K",
            type=positive_int,
            default=1,
            help="Score K candidate architectures per trial by zero-cost proxies, train the best; "
            "with --workers too (default: 1, off).",
        )
        parser.add_argument(
            "--screen-by",
            choices=SCREEN_BY,
            default=VOTE,
            help=f"The proxy that picks the candidate to train, or vote: the best mean rank (default: {VOTE}).",
        )
        add_memory_limit_argument(parser)
        add_source_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # Progress reports each trial
        display = _Display(total=args.trials)
        stopped: SearchInterrupted | None = None
        try:
            study = run_search(
                space=args.space,
                study=StudySpec(
                    name=args.study,
                    storage=args.storage,
                    enqueue=tuple(args.enqueue_preset),
                    report=not args.no_report,
                    command=" ".join(["python -m search", *sys.argv[1:]]),
                    warm_start=args.warm_start,
                ),
                budget=Budget(
                    trials=args.trials, timeout=args.timeout, epochs=args.epochs, train_fraction=args.train_fraction
                ),
                data=_data_spec(args),
                sampler=SamplerSpec(args.sampler, fallback_after=args.fallback_after or None),
                pruning=Pruning(kind=args.pruner, min_fraction=args.min_rung, eta=args.eta),
                leases=LeasePolicy(
                    heartbeat_interval=args.heartbeat_interval,
                    grace_period=args.grace_period,
                    retry_failed=args.retry_failed,
                ),
                screening=Screening(count=args.screen, by=args.screen_by),
                workers=Workers(count=args.workers, device=args.device, memory_limit=args.memory_limit),
                seed=args.seed,
                on_start=display.start,
                on_trial=display.trial,
                on_note=display.note,
            )
        except SearchInterrupted as stop:
            study, stopped = stop.study, stop
        finally:
            display.close()
        if stopped is not None:
            by = "terminated (SIGTERM)" if stopped.signal == signal.SIGTERM else "interrupted"
            print(f"{by}: finished trials are kept in the study", file=sys.stderr)
        if display.plan is not None and display.plan.report is not None:
            print(f"report: {display.plan.report}", file=sys.stderr)
        print(
            f"{counted_trials(study)} distinct architectures evaluated; see: python -m search show {study.study_name}",
            file=sys.stderr,
        )
        return 0 if stopped is None else exit_code_of(stopped)


def _data_spec(args: argparse.Namespace) -> DataSpec:
    """--data and the source flags: options only where --data is given or a flag was changed
    (otherwise the space's own options stand)."""
    options = source_options(args)
    given = args.data is not None or options != SourceOptions()
    return DataSpec(
        dataset=args.data, root=args.data_root, options=options if given else None, cache_dir=args.cache_dir
    )


class _Display:
    """What the command shows of a run: the plan, then a bar or one line per trial."""

    def __init__(self, *, total: int) -> None:
        self.total = total
        self.plan: RunPlan | None = None
        self.progress: Progress | None = None

    def start(self, plan: RunPlan) -> None:
        self.plan = plan
        for line in data_lines(plan.data):
            print(line, file=sys.stderr)
        if plan.settings_changed:
            print(
                f"warning: study {plan.study.study_name} was created with other settings, going on with these: "
                f"{plan.settings_changed}",
                file=sys.stderr,
            )
        workers = f", {plan.workers} workers" if plan.workers > 1 else ""
        if plan.warm_started:
            source = plan.study.user_attrs["settings"].get("warm_start") or {}
            print(
                f"warm start: {plan.warm_started} trials of study {source.get('study')}, "
                "modelled by the sampler and not trained again; they count toward no --trials",
                file=sys.stderr,
            )
        print(
            f"study {plan.study.study_name}: {plan.finished} architectures evaluated, {plan.to_run} to run; "
            f"{plan.device} training{workers}; {plan.pruner}",
            file=sys.stderr,
        )
        self.progress = Progress(total=self.total, done=plan.finished)

    def trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.progress is not None:
            self.progress(study, trial)

    def note(self, line: str) -> None:
        if self.progress is not None:
            self.progress.note(line)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()


def data_lines(data: DataSplits | None) -> list[str]:
    """The run's first lines for a source: what it trains on, and the files skipped with where they are listed."""
    if data is None or data.cache is None:
        return []
    channels, side, _ = data.input_size
    counts = "/".join(f"{len(labels):,}" for _, labels in (data.train, data.val, data.test))
    lines = [
        f"data {data.name}: {data.num_classes} classes, {counts} train/val/test images, "
        f"{side}x{side} px, {channels} channel{'s' if channels > 1 else ''}; cache {data.cache}"
    ]
    if data.skipped:
        lines.append(
            f"skipped {data.skipped:,} file{'s' if data.skipped > 1 else ''} that cannot be decoded; "
            f"the list, with reasons: {data.cache / 'skipped.csv'}"
        )
    return lines


def _as_fraction(text: str) -> Fraction:
    """``1/9`` as the ratio of its integers, anything else (``0.25``, ``1e-3``) through float:
    ``Fraction("1e-999999999")`` would compute that power of ten for minutes."""
    numerator, slash, denominator = text.partition("/")
    return Fraction(int(numerator), int(denominator)) if slash else Fraction(float(text))


_rung_fraction = checked_number(_as_fraction, lambda v: 0 < v < 1, "a fraction in (0, 1) such as 1/9 or 0.25")
