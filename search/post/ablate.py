"""Ablation: variants of one architecture that differ in one knob, trained on the same seeds, compared in pairs.

A variation is ``KEY=V1,V2[,...]``. KEY is a path into the architecture's
dict form (``Architecture.to_dict``, the YAML file's layout):

- ``stem.width``, ``stem.style``, ``head.norm``, ``head.dropout``, ``conv_bias``;
- ``stages.KNOB``: every stage that has KNOB (``block``, ``depth`` and
  ``stride`` every stage has; ``growth_rate`` only the stages whose block
  has it); ``stages.I.KNOB``: stage I alone, counting from 0 as the YAML
  list and error messages (``stages[1]``) do;
- ``transitions.KNOB``: every transition (not the null ones);
  ``transitions.I.KNOB``: transition I alone.

Values are YAML scalars (``avg``, ``12``, ``0.5``, ``true``). A new ``block``
keeps the stage's depth, stride and the knobs the new block shares (a dense
stage's growth rate for csp_dense); its other knobs take their defaults.
Every variant goes through ``Architecture.from_dict`` and the closed-form count
before anything trains, so an impossible one is a one-line error.

The statistics: every variant trains with seeds 0 to S-1, so a variant's
test accuracies pair with the first variant's (the reference) seed by seed.
For each variant the table gives the mean paired difference from the
reference and two two-sided p-values: the paired t-test's
(``scipy.stats.ttest_rel``; it assumes the differences are roughly normal)
and an exact sign-flip permutation test's, which assumes only that, were the
knob irrelevant, each difference would be as likely to have the other sign:
of the 2^S sign patterns, the fraction whose sum is at least as far from 0
as the observed one. With 2 seeds that fraction is never below 0.5, so small
seed counts cannot show a difference; with 1 seed neither test exists.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from evaluation import Architecture, ArchitectureError, TrainConfig, count
from evaluation.atomic import atomic_write, write_text
from evaluation.blocks import BLOCKS
from evaluation.data import DataSplits
from search.errors import UsageError
from search.post.full_training import Job, JobReporter, input_shape, run_jobs

__all__ = [
    "MAX_SEEDS",
    "Variant",
    "Variation",
    "ablate",
    "ablation_table",
    "make_variants",
    "paired_t_p_value",
    "parse_variation",
    "sign_flip_p_value",
    "table_paths",
]

# The exact sign-flip test enumerates 2^S sign patterns.
MAX_SEEDS = 16
_FORMS = "stem.FIELD, head.FIELD, conv_bias, stages[.I].KNOB or transitions[.I].KNOB"


@dataclass(frozen=True)
class Variation:
    """One knob and the values it takes, as the user wrote them."""

    key: str
    texts: tuple[str, ...]

    @property
    def values(self) -> tuple[Any, ...]:
        return tuple(_scalar(self.key, text) for text in self.texts)


@dataclass(frozen=True)
class Variant:
    """One architecture of an ablation: its label (``KEY=VALUE``), folder name and network."""

    label: str
    slug: str
    arch: Architecture


def parse_variation(text: str) -> Variation:
    """``KEY=V1,V2[,...]``; at least two distinct values."""
    key, sep, values = text.partition("=")
    texts = tuple(v.strip() for v in values.split(","))
    if not sep or not key.strip() or not all(texts):
        raise UsageError(f"--vary expects KEY=V1,V2[,...] (e.g. transitions.pooling=avg,max), got {text!r}")
    if len(texts) < 2 or len(set(texts)) < len(texts):
        raise UsageError(f"--vary {key} needs at least two different values, got {values!r}")
    return Variation(key.strip(), texts)


def _scalar(key: str, text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if value is None or isinstance(value, list | dict):
        raise UsageError(f"--vary {key}: {text!r} is not a single value (a word, number or true/false)")
    return value


def make_variants(arch: Architecture, variation: Variation) -> list[Variant]:
    """The architecture with the knob set to each value, in the order given; each validated."""
    variants = []
    for text, value in zip(variation.texts, variation.values):
        document = arch.to_dict()
        _set(document, variation.key, value)
        label = f"{variation.key}={text}"
        try:
            variant = Architecture.from_dict(document)
        except ArchitectureError as error:
            raise UsageError(f"--vary {label}: {error}") from None
        variants.append(Variant(label, _slug(label), variant))
    if len({v.slug for v in variants}) < len(variants):
        raise UsageError(f"--vary {variation.key}: values {', '.join(variation.texts)} name the same folder twice")
    return variants


def _set(document: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (a path of the module's doc) to ``value`` in an architecture's dict, in place."""
    parts = key.split(".")
    head = parts[0]
    if head == "conv_bias" and len(parts) == 1:
        document["conv_bias"] = value
    elif head in ("stem", "head") and len(parts) == 2:
        if parts[1] not in document[head]:
            raise UsageError(f"--vary {key}: {head} has no {parts[1]}; its fields: {', '.join(document[head])}")
        document[head][parts[1]] = value
    elif head in ("stages", "transitions") and len(parts) in (2, 3):
        for index in _targets(document[head], key, head, parts):
            if head == "stages" and parts[-1] == "block":
                document[head][index] = _with_block(document[head][index], value)
            else:
                document[head][index][parts[-1]] = value
    else:
        raise UsageError(f"--vary {key}: not a knob path; expected {_FORMS}")


def _targets(parts_list: list[dict[str, Any] | None], key: str, head: str, parts: list[str]) -> list[int]:
    """Indexes of the stages or transitions ``key`` sets: the one it names, or every one that has the knob."""
    knob = parts[-1]
    if len(parts) == 3:
        if not parts[1].isdigit() or int(parts[1]) >= len(parts_list):
            raise UsageError(f"--vary {key}: {head} are numbered 0 to {len(parts_list) - 1}, got {parts[1]!r}")
        index = int(parts[1])
        item = parts_list[index]
        if item is None:
            raise UsageError(f"--vary {key}: {head}[{index}] is null (no transition there)")
        if knob not in item:
            raise UsageError(f"--vary {key}: {head}[{index}] has no {knob}; it has {', '.join(item)}")
        return [index]
    found = [i for i, item in enumerate(parts_list) if item is not None and knob in item]
    if not found:
        raise UsageError(f"--vary {key}: no entry of {head} has {knob}")
    return found


def _with_block(stage: dict[str, Any], kind: Any) -> dict[str, Any]:
    """The stage as a ``kind`` block: depth, stride and the knobs both blocks have are kept."""
    if not isinstance(kind, str) or kind not in BLOCKS:
        return {**stage, "block": kind}  # from_dict names the known blocks
    knobs = {f.name for f in dataclasses.fields(BLOCKS[kind].spec)}
    return {
        "block": kind,
        "depth": stage["depth"],
        "stride": stage["stride"],
        **{k: v for k, v in stage.items() if k in knobs},
    }


# --- statistics ----------------------------------------------------------------------


def sign_flip_p_value(differences: Sequence[float]) -> float:
    """Exact two-sided p of the sign-flip permutation test of paired ``differences``.

    The fraction of the 2^n sign patterns whose sum is at least as far from 0
    as the observed sum (a relative tolerance keeps equal sums equal in floating point).
    """
    n = len(differences)
    if not 1 <= n <= MAX_SEEDS:
        raise ValueError(f"the exact test takes 1 to {MAX_SEEDS} differences, got {n}")
    observed = abs(math.fsum(differences))
    tolerance = 1e-9 * max(1.0, sum(abs(d) for d in differences))
    extreme = sum(
        abs(math.fsum(s * d for s, d in zip(signs, differences))) >= observed - tolerance
        for signs in itertools.product((1, -1), repeat=n)
    )
    return extreme / 2**n


def paired_t_p_value(reference: Sequence[float], variant: Sequence[float]) -> float | None:
    """Two-sided p of the paired t-test; None with fewer than 2 pairs or differences without spread."""
    differences = [v - r for r, v in zip(reference, variant)]
    if len(differences) < 2 or max(differences) - min(differences) <= 1e-12:
        return None
    from scipy.stats import ttest_rel  # 1.5 s to import; every `python -m search` start would pay it

    return float(ttest_rel(variant, reference).pvalue)


def ablation_table(variants: Sequence[Variant], records: Sequence[Sequence[dict[str, Any]]]) -> pd.DataFrame:
    """One row per variant: mean and sample std of test accuracy, costs, and the paired comparison with the first.

    ``records[i]`` are variant i's result records, one per seed, in seed order.
    ``note`` says why a p-value is missing.
    """
    reference = [r["test_accuracy"] for r in records[0]]
    rows = []
    for index, (variant, runs) in enumerate(zip(variants, records)):
        accuracies = [r["test_accuracy"] for r in runs]
        differences = [v - r for r, v in zip(reference, accuracies)]
        seeds = len(accuracies)
        row: dict[str, Any] = {
            "variant": variant.label,
            "seeds": seeds,
            "mean_test_accuracy": sum(accuracies) / seeds,
            "std": float(pd.Series(accuracies).std()) if seeds > 1 else None,
            "params": runs[0]["params"],
            "macs": runs[0]["macs"],
            "latency_ms": sum(r["latency_ms"] for r in runs) / seeds,
            "diff_vs_first": None,
            "p_ttest": None,
            "p_sign_flip": None,
            "note": "",
        }
        if index == 0:
            row["note"] = "reference"
        elif seeds == 1:
            row["diff_vs_first"] = differences[0]
            row["note"] = "p undefined with 1 seed"
        else:
            row["diff_vs_first"] = sum(differences) / seeds
            row["p_ttest"] = paired_t_p_value(reference, accuracies)
            row["p_sign_flip"] = sign_flip_p_value(differences)
            if row["p_ttest"] is None:
                row["note"] = "t-test undefined: every seed differs by the same amount"
        rows.append(row)
    return pd.DataFrame(rows)


# --- the run ---------------------------------------------------------------------------


def ablate(
    arch: Architecture,
    variation: Variation,
    data: DataSplits,
    config: TrainConfig,
    out: Path,
    *,
    seeds: int,
    source: str,
    memory_limit: float | None = None,
    reporter: JobReporter | None = None,
) -> pd.DataFrame:
    """Train every variant with seeds 0 to ``seeds``-1 under ``out``; write and return the table.

    ``out/<KEY=VALUE>/seed-<s>/`` holds each training's files; a training whose
    result.json exists is not repeated. ``out`` gets ablation-<KEY>.csv and
    .json (the table, the variation, the seeds and the settings).
    """
    if not 1 <= seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds must be 1 to {MAX_SEEDS} (the exact sign-flip test enumerates 2^S), got {seeds}")
    variants = make_variants(arch, variation)
    shape = input_shape(data, config)
    for variant in variants:
        try:
            count(variant.arch, shape, data.num_classes)
        except ArchitectureError as error:
            raise UsageError(f"--vary {variant.label}: {error}") from None
    jobs = [
        Job(f"{v.label} seed {seed}", v.arch, seed, out / v.slug / f"seed-{seed}", {"variant": v.label})
        for v in variants
        for seed in range(seeds)
    ]
    records = run_jobs(jobs, data, config, memory_limit=memory_limit, reporter=reporter)
    table = ablation_table(variants, [records[i * seeds : (i + 1) * seeds] for i in range(len(variants))])
    csv_path, json_path = table_paths(out, variation)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(csv_path) as temporary:
        table.to_csv(temporary, index=False)
    document = {
        "architecture": source,
        "vary": variation.key,
        "values": list(variation.texts),
        "seeds": list(range(seeds)),
        "settings": {k: v for k, v in dataclasses.asdict(config).items() if k != "seed"},
        "rows": json.loads(table.to_json(orient="records")),
    }
    write_text(json_path, json.dumps(document, indent=2) + "\n")
    return table


def table_paths(out: Path, variation: Variation) -> tuple[Path, Path]:
    """``out/ablation-<KEY>.csv`` and ``.json``: ablations of other knobs of the same network keep theirs."""
    stem = f"ablation-{_slug(variation.key)}"
    return out / f"{stem}.csv", out / f"{stem}.json"


def _slug(text: str) -> str:
    """``text`` as a file name: letters, digits and ``. _ = -`` kept, anything else ``_``."""
    return re.sub(r"[^A-Za-z0-9._=-]", "_", text)
