"""Export a study's best architectures: YAML configs, CSV tables, standalone PyTorch files, ONNX graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import torch
import yaml

from evaluation import build_model, export_onnx
from evaluation.atomic import atomic_write, write_text
from evaluation.deploy import dataset_metadata
from evaluation.standalone import standalone_source
from search.pareto import front_frame, objective_names, ranked_trials, recorded_metrics, trials_frame
from search.storage.records import TrialRecord

__all__ = ["export_study", "standalone_source"]


def export_study(study: optuna.Study, out: Path, *, top: int | None, python: bool, onnx: bool = False) -> list[Path]:
    """Write ``best-K.yaml`` (and ``best-K.py``, ``best-K.onnx``) per chosen front member, plus CSVs.

    The front and its order are ``search.pareto``'s rule (one member per
    architecture, best first by the quality objective), as ``search show`` and
    ``search finalize`` rank; pareto.csv lists the members in that order, so
    its row K is best-K. trials.csv is the table ``search show --format csv`` prints.

    A study holds no trained weights, so ``best-K.onnx`` is the network as
    initialised with seed 0: a graph to check that a runtime takes it
    (``search onnx`` exports a trained run).
    """
    out.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = study.user_attrs.get("settings", {})
    written = []
    ranked = ranked_trials(study)
    front = [r.trial for r in ranked if r.rank == 1]
    for rank, trial in enumerate(front[:top], start=1):
        record = TrialRecord.load(trial)
        path = out / f"best-{rank}.yaml"
        names = objective_names(study)
        document = {
            "architecture": record.architecture,
            "metrics": {
                **dict(zip(names, trial.values)),
                **recorded_metrics(record, names),
                "val_accuracy_per_epoch": record.val_accuracy_per_epoch,
            },
            "source": {
                "study": study.study_name,
                "trial": trial.number,
                "dataset": settings.get("dataset"),
                "input_size": settings.get("input_size"),
                "num_classes": settings.get("num_classes"),
            },
        }
        write_text(path, yaml.safe_dump(document, sort_keys=False))
        written.append(path)
        input_size = tuple(settings.get("input_size") or (3, 224, 224))
        num_classes = settings.get("num_classes") or 1000
        if python or onnx:
            arch = record.built_architecture(trial=trial.number, study=study.study_name, to="build")
        if python:
            source = standalone_source(arch, input_size[0], num_classes)
            written.append(out / f"best-{rank}.py")
            write_text(written[-1], source)
        if onnx:
            torch.manual_seed(0)
            model = build_model(arch, input_size, num_classes)
            described = settings.get("data") or settings.get("dataset")  # a source's classes and decoding
            metadata = {**dataset_metadata(described), "weights": "untrained (seed 0)"}
            written.append(export_onnx(model, out / f"best-{rank}.onnx", input_size, metadata=metadata))
    frame = trials_frame(study, ranked)
    with atomic_write(out / "trials.csv") as temporary:
        frame.to_csv(temporary, index=False)
    with atomic_write(out / "pareto.csv") as temporary:
        front_frame(frame, ranked).to_csv(temporary, index=False)
    return [*written, out / "pareto.csv", out / "trials.csv"]
