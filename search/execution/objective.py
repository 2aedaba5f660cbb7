"""One trial: sample, validate, profile, screen, train, record.

With ``screen`` > 1 the trial's architecture is first chosen among that many
candidates by their zero-cost proxies (``search.execution.screening``); every trained
trial records its model's proxy scores at initialisation, on one mini-batch
of the training split drawn with the trial's seed (``evaluation.proxies``).

The order is cheapest first. An architecture that cannot be built, or breaks a
constraint that is known before training (params, MACs, latency; the exported
model's ONNX latency when the space names ``onnx_latency_ms``), is
*rejected*: it costs no training and is completed as infeasible through
``Trial.set_constraint``, so the sampler learns to avoid it (a FAIL would be
ignored by Optuna's samplers, which would keep proposing it). An architecture
already evaluated in the study takes the recorded values instead of training
again, and one another worker is training right now is waited for, then
copied (``search.storage.claims``). A run that diverges (NaN/inf loss) is completed as
infeasible with its reason. So is one whose estimated training memory exceeds
the machine's (``evaluation.memory``, before building), and one that runs out
of memory in training anyway. Anything else that raises (model code, data) is
recorded and left to Optuna as FAIL. Either way the trial's memory is freed
before the next. The run's stopping rule (``search.pruners``) may stop training
at a rung of the budget or after an epoch: the trial then ends PRUNED with its
reason, and a later trial of the same architecture is pruned too, without training.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from evaluation import Architecture, ArchitectureError, build_model, count
from evaluation.data import DataSplits
from evaluation.errors import ExportError
from evaluation.memory import MemoryRefused, check_memory
from evaluation.metrics import METRICS, get_metric
from evaluation.onnx_latency import onnx_latency_ms
from evaluation.profile import Timing, count_macs, measure_latency
from evaluation.proxies import measure_proxies, proxy_batch
from evaluation.scores import score_model, scores_of_classes
from evaluation.training import (
    EpochReport,
    Predictions,
    TrainConfig,
    TrainResult,
    planned_images,
    resolve_device,
    train,
)
from search.execution.screening import Screening, screen_trial
from search.pruners import Pruner, Pruning, RungWatch
from search.storage.claims import claim_architecture, wait_until_finished
from search.storage.records import TrialOutcome, TrialRecord, architecture_key
from spaces import Space, precheck, sample_architecture

__all__ = ["TrialFault", "TrialObjective", "VALID_CONSTRAINT", "release_memory"]

# Constraint set to 1 when a trial has no meaningful result (the architecture
# could not be built, or training diverged): such trials never enter the front.
VALID_CONSTRAINT = "valid"


class TrialFault(RuntimeError):
    """A trial that raised (model code, data, ...); its reason is recorded and the study goes on."""


def release_memory(device: str) -> None:
    """Free what a finished trial left: unreachable models and optimizers, and CUDA's cached blocks."""
    gc.collect()
    if device != "cpu" and torch.cuda.is_available():  # "cuda", "cuda:1" or "auto"
        torch.cuda.empty_cache()


def _is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or a CPU allocation failure (torch raises those as RuntimeError)."""
    return isinstance(error, torch.OutOfMemoryError | MemoryError) or "can't allocate memory" in str(error)


def _images_seen(result: TrainResult, planned: int, epochs: int) -> int:
    """Training images a run saw: all it planned, else up to its last validation (a rung or an epoch)."""
    if result.stopped_reason is None:
        return planned
    last_rung = max((c.images for c in result.checkpoints), default=0)
    return max(last_rung, result.epochs_run * (planned // epochs))


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@dataclass
class TrialObjective:
    """The callable given to ``study.optimize``; returns the space's objective values.

    ``memory_limit``: bytes a trial's model may be estimated to need in training
    (``evaluation.memory``); None takes the machine's memory. ``pruner``: the
    run's pruner (``search.pruners``), which stops trials at the rungs of their
    budget or after an epoch; None makes one from the pruning the study stores.
    ``screening``: candidates scored per trial, the best trained
    (``search.execution.screening``); one candidate trains the sampler's
    proposal as it comes.
    """

    space: Space
    data: DataSplits
    config: TrainConfig
    latency_repeats: int = 5
    # While a trial waits for another worker's trial of the same architecture:
    # how often it looks, and what it does meanwhile (the runner fails stale trials).
    poll_seconds: float = 1.0
    while_waiting: Callable[[optuna.Study], None] | None = None
    memory_limit: float | None = None
    screening: Screening = Screening()
    pruner: Pruner | None = None

    def __call__(self, trial: optuna.Trial) -> list[float]:
        try:
            return self._evaluate(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # noqa: BLE001 - recorded, then Optuna marks FAIL
            reason = f"{type(error).__name__}: {error}"
            TrialRecord.save_outcome(trial, TrialOutcome.FAILED, reason)
        # Raised afresh, out of the except block: the original traceback would keep
        # the trial's model and optimizer alive (its frames hold them) into the next trial.
        release_memory(self.config.device)
        raise TrialFault(reason)

    # -- steps --------------------------------------------------------------

    def _evaluate(self, trial: optuna.Trial) -> list[float]:
        if self.screening.active:
            screen_trial(
                trial,
                self.space,
                self.data,
                self._trial_config(trial),
                count=self.screening.count,
                by=self.screening.by,
            )
        try:
            arch = sample_architecture(self.space, trial)
        except ArchitectureError as error:
            return self._finish(trial, TrialRecord(outcome=TrialOutcome.REJECTED, reason=str(error)), valid=False)
        architecture = arch.to_dict()
        key = architecture_key(architecture)
        record = TrialRecord(outcome=TrialOutcome.TRAINED, architecture=architecture, architecture_key=key)

        previous = self._evaluated_or_wait(trial, key)
        if previous is not None:
            return self._copy(trial, previous)

        reason = precheck(self.space, arch)
        counts = self._counts(arch)
        if counts is not None:
            record.params, record.macs = counts
        if reason is not None:
            record.outcome, record.reason = TrialOutcome.REJECTED, reason
            return self._finish(trial, record, valid=counts is not None)

        config = self._trial_config(trial)
        refusal = self._memory_refusal(arch, config)
        if refusal is not None:
            record.outcome, record.reason = TrialOutcome.REJECTED, refusal
            return self._finish(trial, record, valid=False)
        try:
            return self._build_and_train(trial, record, arch, config)
        except (torch.OutOfMemoryError, MemoryError, RuntimeError) as error:
            if not _is_out_of_memory(error):
                raise
            reason = f"out of memory: {_first_line(error)}"
        # Here, past the except block, the traceback and the model its frames held are gone.
        release_memory(config.device)
        record.outcome, record.reason = TrialOutcome.FAILED, reason
        return self._finish(trial, record, valid=False)

    def _trial_config(self, trial: optuna.Trial) -> TrainConfig:
        """Each trial its own seed, derived from the run's, for its initial weights, its
        proxy batch and its training alike, so a study repeats from --seed."""
        return dataclasses.replace(self.config, seed=self.config.seed + trial.number)

    def _memory_refusal(self, arch: Architecture, config: TrainConfig) -> str | None:
        """Why ``arch`` cannot train in this machine's memory (``evaluation.memory``), or None."""
        input_size, num_classes = self.space.model_shape()
        try:
            check_memory(
                arch,
                input_size,
                num_classes,
                batch_size=config.batch_size,
                limit_bytes=self.memory_limit,
                device=config.device,
            )
        except MemoryRefused as refused:
            return str(refused)
        return None

    def _build_and_train(
        self, trial: optuna.Trial, record: TrialRecord, arch: Architecture, config: TrainConfig
    ) -> list[float]:
        input_size, num_classes = self.space.model_shape()
        torch.manual_seed(config.seed)
        model = build_model(arch, input_size, num_classes)
        record.macs = count_macs(model, input_size)
        latency = measure_latency(model, input_size, timing=Timing(repeats=self.latency_repeats))
        record.latency_ms, record.latency_spread = latency.ms, latency.spread
        limit = self.space.constraints.limit("latency_ms")
        if limit is not None and record.latency_ms > limit:
            record.outcome = TrialOutcome.REJECTED
            record.reason = f"latency {record.latency_ms:.2f} ms > max_latency_ms {limit:g}"
            return self._finish(trial, record, valid=True)
        if self._names("onnx_latency_ms"):
            # The export costs seconds: paid only by a space that judges its trials by it.
            try:
                record.onnx_latency_ms = onnx_latency_ms(model, input_size, timing=Timing(repeats=self.latency_repeats))
            except ExportError as error:
                record.outcome, record.reason = TrialOutcome.REJECTED, f"no ONNX latency: {_first_line(error)}"
                return self._finish(trial, record, valid=False)  # a model that does not deploy is no result
            limit = self.space.constraints.limit("onnx_latency_ms")
            if limit is not None and record.onnx_latency_ms > limit:
                record.outcome = TrialOutcome.REJECTED
                record.reason = f"ONNX latency {record.onnx_latency_ms:.2f} ms > max_onnx_latency_ms {limit:g}"
                return self._finish(trial, record, valid=True)

        record.proxies, failures = self._proxies(model, config)
        record.proxy_failures = failures or None
        watch = self._pruner_for(trial).watch(trial)
        record.images_planned = watch.pruner.budget
        record.save_costs(trial)  # other trials compare their rung points with this one's while it trains
        result = train(
            model,
            self.data,
            config,
            on_epoch=self._epoch_callback(trial, record, watch),
            checkpoints=watch.checkpoints,
            on_checkpoint=watch,
        )
        record.epochs_run = result.epochs_run
        record.train_seconds = result.train_seconds
        record.eval_seconds = result.eval_seconds
        record.device = result.device
        record.images_seen = _images_seen(result, record.images_planned, config.epochs)
        if result.diverged:
            record.outcome, record.reason = TrialOutcome.DIVERGED, result.stopped_reason
            return self._finish(trial, record, valid=False)
        if watch.stop_reason is not None:
            record.outcome, record.reason = TrialOutcome.PRUNED, watch.stop_reason
            self._finish(trial, record, valid=True)
            raise optuna.TrialPruned(record.reason)
        if result.stopped_reason:
            record.reason = result.stopped_reason
        self._score(model, record, config, result.val_predictions)
        return self._finish(trial, record, valid=True)

    def _score(
        self, model: torch.nn.Module, record: TrialRecord, config: TrainConfig, predictions: Predictions | None
    ) -> None:
        """The trained model's class-balanced scores (``val_scores``: balanced accuracy, macro-F1,
        ROC AUC for two classes) and each class's accuracy, on the validation split (``evaluation.scores``):
        from the training's last validation pass when it was of these weights, else from a pass of its own."""
        images, labels = self.data.val
        if len(labels) == 0:
            return
        started = time.perf_counter()
        if predictions is not None:
            positive = None if predictions.positive is None else predictions.positive.numpy()
            scores = scores_of_classes(labels.numpy(), predictions.classes.numpy(), predictions.num_classes, positive)
        else:
            scores = score_model(model, images, labels, config, mean=self.data.mean, std=self.data.std)
        record.val_scores = scores.metrics()
        record.per_class_accuracy = scores.per_class_accuracy
        record.eval_seconds += time.perf_counter() - started

    def _names(self, metric: str) -> bool:
        """Whether the space names ``metric`` as an objective or a constraint."""
        return metric in {o.metric for o in self.space.objectives} or self.space.constraints.limit(metric) is not None

    def _pruner_for(self, trial: optuna.Trial) -> Pruner:
        """The run's pruner: the one given, else one made once from the pruning the study stores."""
        if self.pruner is None:
            pruning = Pruning.of_study(trial.study)
            self.pruner = Pruner(pruning, self.space.objectives, planned_images(self.data, self.config))
        return self.pruner

    def _proxies(self, model: torch.nn.Module, config: TrainConfig) -> tuple[dict[str, float | None], dict[str, str]]:
        """The zero-cost proxies of the untrained ``model`` on the trial's proxy batch."""
        device = resolve_device(config.device)
        images, labels = proxy_batch(self.data, seed=config.seed, resize=config.resize, device=device)
        return measure_proxies(model, images, labels)

    def _counts(self, arch: Architecture) -> tuple[int, int] | None:
        """Closed-form params and MACs, or None when the architecture cannot be built."""
        input_size, num_classes = self.space.model_shape()
        try:
            counts = count(arch, input_size, num_classes)
        except ArchitectureError:
            return None
        return counts.params, counts.macs

    def _epoch_callback(
        self, trial: optuna.Trial, record: TrialRecord, watch: RungWatch
    ) -> Callable[[EpochReport], bool]:
        def on_epoch(report: EpochReport) -> bool:
            # The curve grows here, epoch by epoch, so a report drawn mid-run shows it;
            # then a per-epoch stopping rule, if the run's has one, may stop the trial.
            assert report.val_accuracy is not None, "open_run_data refuses data without validation images"
            record.val_accuracy_per_epoch.append(report.val_accuracy)
            trial.set_user_attr("val_accuracy_per_epoch", record.val_accuracy_per_epoch)
            return watch.after_epoch(report)

        return on_epoch

    def _evaluated_or_wait(self, trial: optuna.Trial, key: str) -> FrozenTrial | None:
        """The finished trial of this architecture, after waiting for one that another
        worker trains now; None when this trial is the one to train it."""
        while True:
            previous = self._find_evaluated(trial, key)
            if previous is not None:
                return previous
            busy = claim_architecture(trial, key, poll_seconds=self.poll_seconds, while_waiting=self._idle(trial))
            if busy is None:
                return None
            wait_until_finished(trial.study, busy, poll_seconds=self.poll_seconds, while_waiting=self._idle(trial))

    def _idle(self, trial: optuna.Trial) -> Callable[[], None]:
        def idle() -> None:
            if self.while_waiting is not None:
                self.while_waiting(trial.study)

        return idle

    def _find_evaluated(self, trial: optuna.Trial, key: str) -> FrozenTrial | None:
        """The first finished (complete or pruned) trial of this study with the same architecture."""
        for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            if other.number != trial.number and other.user_attrs.get("architecture_key") == key:
                return other
        return None

    def _copy(self, trial: optuna.Trial, previous: FrozenTrial) -> list[float]:
        """Take the values and constraints recorded for the same architecture; a pruned one's is pruned too."""
        record = TrialRecord.load(previous)
        record.outcome = TrialOutcome.DUPLICATE
        record.duplicate_of = previous.user_attrs.get("duplicate_of", previous.number)
        record.images_seen = record.images_planned = 0  # it trains nothing
        pruned = previous.state == TrialState.PRUNED
        record.reason = f"same architecture as trial {record.duplicate_of}; " + (
            "that one was stopped early, so is this one" if pruned else "values copied"
        )
        record.save(trial)
        for key, value in previous.constraints.items():
            trial.set_constraint(key, value)
        if pruned:
            raise optuna.TrialPruned(record.reason)
        return list(previous.values)

    def _finish(self, trial: optuna.Trial, record: TrialRecord, *, valid: bool) -> list[float]:
        record.save(trial)
        trial.set_constraint(VALID_CONSTRAINT, 0.0 if valid else 1.0)
        for metric in METRICS.values():
            limit = self.space.constraints.limit(metric.name)
            if limit is not None:
                value = record.value(metric)
                # Relative excess, so constraints of different units weigh alike.
                trial.set_constraint(metric.name, 0.0 if value is None else (value - limit) / limit)
        return [self._value(o.metric, o.direction, record) for o in self.space.objectives]

    @staticmethod
    def _value(name: str, direction: str, record: TrialRecord) -> float:
        """An objective value; a trial without one (not trained, not measured) gets the
        metric's worst for ``direction``, so a missing value never ranks best."""
        metric = get_metric(name)
        value = record.value(metric)
        return metric.worst_for(direction) if value is None else float(value)
