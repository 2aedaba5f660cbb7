"""Loading space files: the built-ins, and one exact error line per mistake."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from pathlib import Path

import pytest

from evaluation.architecture import Head, Stem, Transition
from evaluation.blocks import BLOCKS
from spaces import SpaceError, builtin_space_names, load_space
from spaces.schema import BLOCK_KNOBS, HEAD_KNOBS, STEM_KNOBS, TRANSITION_KNOBS

BUILTINS = ["densenet", "densenet_hybrid", "images", "resnet"]
FASHION_BUILTINS = ["densenet", "densenet_hybrid", "resnet"]  # the spaces made for Fashion-MNIST; images takes any data
STAGES = "stages:\n  count: 2\n  each: {block: dense, depth: {low: 1, high: 3}}\n"


def test_builtin_space_names_lists_the_shipped_files() -> None:
    assert builtin_space_names() == BUILTINS, f"built-in spaces: {builtin_space_names()}"


@pytest.mark.parametrize("name", FASHION_BUILTINS)
def test_load_space_reads_each_builtin(name: str) -> None:
    space = load_space(name)
    assert space.name == name, f"name {space.name!r}"
    assert space.input_size == (1, 28, 28), f"{name} input {space.input_size}"
    assert space.num_classes == 10, f"{name} classes {space.num_classes}"
    assert space.dataset == "fashion_mnist", f"{name} dataset {space.dataset}"
    assert [o.metric for o in space.objectives] == ["accuracy", "macs"], f"{name} objectives {space.objectives}"
    assert space.description, f"{name} has no description"
    assert space.size_is_exact and space.size() > 1000, f"{name} size {space.size()}"


@pytest.mark.parametrize(
    ("name", "baseline"),
    [("densenet", "d2l_densenet"), ("resnet", "resnet18_like"), ("densenet_hybrid", "small_dense")],
)
def test_load_space_builtin_baseline_is_in_the_space(name: str, baseline: str) -> None:
    space = load_space(name)
    arch = space.baseline(baseline)
    assert space.params_for(arch), f"{name}: {baseline} has no parameters"


def test_space_baseline_unknown_name_lists_known_ones() -> None:
    with pytest.raises(SpaceError) as caught:
        load_space("resnet").baseline("resnet50")
    assert str(caught.value) == (
        "spaces/resnet.yaml: baselines: no baseline 'resnet50'; known baselines: resnet18_like"
    ), str(caught.value)


def test_load_space_default_budget_is_small() -> None:
    training = load_space("densenet_hybrid").training
    assert training.epochs <= 2 and training.train_fraction <= 0.2, f"budget {training}"
    assert training.batch_size == 128, f"batch {training.batch_size}"


def test_load_space_unknown_name_is_one_line() -> None:
    with pytest.raises(SpaceError) as caught:
        load_space("no_such_space")
    assert str(caught.value) == (
        "no_such_space: neither a built-in space (densenet, densenet_hybrid, images, resnet) nor a file"
    ), str(caught.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "stages:\n  count: 2\n  each: {block: dense, dept: 3}\n",
            f"stages.each.dept: unknown key; expected one of block, depth, {', '.join(BLOCKS)}",
            id="unknown-key",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each: {block: dense, depth: four}\n",
            "stages.each.depth: value must be an integer, got 'four'",
            id="wrong-type",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each: {block: dense, depth: {low: 5, high: 3}}\n",
            "stages.each.depth: low (5) must be <= high (3)",
            id="low-above-high",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each: {block: dense, depth: {low: 0, high: 3}}\n",
            "stages.each.depth: low (0) must be >= 1",
            id="low-below-minimum",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each: {block: {choice: [dense, densee]}, depth: 2}\n",
            f"stages.each.block: choice must be one of {', '.join(BLOCKS)}, got 'densee'",
            id="unknown-block",
        ),
        pytest.param(
            STAGES + "transitions:\n  each: {pooling: {choice: [avg, median]}}\n",
            "transitions.each.pooling: choice must be one of avg, max, none, got 'median'",
            id="unknown-pooling",
        ),
        pytest.param(
            "stages: {}\n",
            "stages: expected a mapping with count, each and optional stage1, stage2, ..., got an empty dict",
            id="empty-stages",
        ),
        pytest.param(
            "stages:\n",
            "stages: expected a mapping with count, each and optional stage1, stage2, ..., got nothing",
            id="no-stages",
        ),
        pytest.param(
            "stages:\n  count: 0\n  each: {block: dense, depth: 2}\n",
            "stages.count: value (0) must be >= 1",
            id="zero-stages",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each: {depth: 2}\n",
            "stages.each.block: is required (or give it in stages.stage1.block)",
            id="no-block",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each: {block: dense, depth: 2}\n  stage3: {depth: 1}\n",
            "stages.stage3: unknown key; expected one of count, each, stage1, stage2",
            id="stage-beyond-count",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each: {block: dense, depth: 2, residual: {width: 16}}\n",
            "stages.each.residual: no stage can choose block residual; remove the section or add it to a block choice",
            id="unused-block-section",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each: {block: dense, depth: 2, dense: {stride: 2}}\n",
            "stages.each.dense.stride: unknown key; expected one of growth_rate, bn_size, dropout, memory_efficient, depth",
            id="stride-on-dense",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each: {block: dense, depth: 2, dense: {bn_size: {choice: [0, 4]}, memory_efficient: true}}\n",
            "stages.each.dense.memory_efficient: memory_efficient may be true while bn_size may be 0 "
            "(stages.each.dense.bn_size); it needs bn_size > 0",
            id="memory-efficient-without-bottleneck",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each:\n    block: dual_path\n    depth: 2\n"
            "    dual_path: {bottleneck_width: {choice: [16, 24]}, groups: {choice: [1, 16]}}\n",
            "stages.each.dual_path.groups: groups 16 does not divide every bottleneck_width "
            "(stages.each.dual_path.bottleneck_width: one of 16, 24)",
            id="groups-not-dividing",
        ),
        pytest.param(
            "stages:\n  count: 2\n  each: {block: {choice: [dense, residual], shared: true}, depth: 2}\n",
            "stages.each.block: shared: true is not allowed here: this knob decides which other knobs exist",
            id="shared-selector",
        ),
        pytest.param(
            "stem: {width: {choice: [16, 32], shared: true}}\n" + STAGES,
            "stem.width: shared: true is only allowed under stages.each or transitions.each",
            id="shared-outside-each",
        ),
        pytest.param(
            STAGES + "transitions:\n  each: {compression: {low: 0.25, high: 1.0, step: 0.5}}\n",
            "transitions.each.compression: high - low (0.75) must be a multiple of step (0.5)",
            id="step-not-dividing",
        ),
        pytest.param(
            STAGES + "transitions:\n  each: {compression: {low: 0.0, high: 1.0}}\n",
            "transitions.each.compression: low (0.0) must be > 0.0",
            id="compression-zero",
        ),
        pytest.param(
            STAGES + "head: {dropout: {low: 0.1, high: 0.5, log: true, step: 0.1}}\n",
            "head.dropout: step cannot be combined with log (Optuna samples a log range continuously)",
            id="log-with-step",
        ),
        pytest.param(
            STAGES + "stem: {style: {low: 1, high: 2}}\n",
            "stem.style: a range needs a numeric knob; this one takes a string, use choice",
            id="range-on-string",
        ),
        pytest.param(
            STAGES + "stem: {width: {choices: [16, 32]}}\n",
            "stem.width: unknown key 'choices'; expected a value, {choice: [...]}, "
            "or {low, high} with optional step or log, and optional shared",
            id="misspelt-choice",
        ),
        pytest.param(
            STAGES + "training: {schedule: step}\n",
            "training.schedule: value must be one of cosine, onecycle, constant, got 'step'",
            id="unknown-schedule",
        ),
        pytest.param(
            STAGES + "objectives: {accuracy: maximize, flops: minimize}\n",
            "objectives.flops: unknown key; expected one of accuracy, macs, params, latency_ms, balanced_accuracy, "
            "macro_f1, roc_auc, synflow, naswot, grad_norm, snip, meco, zico, az_expressivity, az_progressivity, "
            "az_trainability, onnx_latency_ms",
            id="unknown-metric",
        ),
        pytest.param(
            STAGES + "baselines:\n  big:\n    stages: [{block: dense, depth: 9}, {block: dense, depth: 1}]\n"
            "    transitions: [{compression: 0.5, pooling: avg}]\n",
            "baselines.big: not in the space: stages.each.depth: the architecture has 9, "
            "the space allows an integer in [1, 3]",
            id="baseline-outside",
        ),
    ],
)
def test_load_space_malformed_file_gives_one_exact_line(
    write_space: Callable[..., Path], body: str, expected: str
) -> None:
    # The header's objectives are dropped where the body brings its own.
    header = None if "objectives:" not in body else "description: d\ndataset: d\ninput: [1, 28, 28]\nnum_classes: 10\n"
    path = write_space(body) if header is None else write_space(body, header=header)
    with pytest.raises(SpaceError) as caught:
        load_space(path)
    message = str(caught.value)
    assert message == f"{path}: {expected}", f"got: {message}"
    assert "\n" not in message, "the error must be one line"


def test_load_space_never_runs_code(tmp_path: Path) -> None:
    witness = tmp_path / "ran"
    path = tmp_path / "evil.yaml"
    path.write_text(f"!!python/object/apply:os.system ['touch {witness}']\n")
    with pytest.raises(SpaceError) as caught:
        load_space(path)
    assert not witness.exists(), "loading a space file ran code"
    assert str(caught.value).startswith(f"{path}: not valid YAML at line 1: could not determine a constructor"), str(
        caught.value
    )


def test_load_space_missing_required_key(write_space: Callable[..., Path]) -> None:
    path = write_space(STAGES, header="description: d\ndataset: d\ninput: [1, 28, 28]\nnum_classes: 10\n")
    with pytest.raises(SpaceError) as caught:
        load_space(path)
    assert str(caught.value) == f"{path}: objectives: is required", str(caught.value)


@pytest.mark.parametrize(
    ("knobs", "cls", "extra"),
    [(STEM_KNOBS, Stem, set()), (TRANSITION_KNOBS, Transition, {"present"}), (HEAD_KNOBS, Head, set())]
    + [
        (BLOCK_KNOBS[kind], family.spec, {"stride"} if family.downsamples else set()) for kind, family in BLOCKS.items()
    ],
)
def test_knob_tables_cover_every_architecture_field(knobs: dict, cls: type, extra: set[str]) -> None:
    fields = {f.name for f in dataclasses.fields(cls) if f.name in typing.get_type_hints(cls)}
    assert set(knobs) == fields | extra, f"{cls.__name__}: knobs {sorted(knobs)} vs fields {sorted(fields)}"


def test_space_with_input_overrides_data(write_space: Callable[..., Path]) -> None:
    space = load_space(write_space(STAGES)).with_input(dataset="cifar10", input_size=(3, 32, 32), num_classes=100)
    assert (space.dataset, space.input_size, space.num_classes) == ("cifar10", (3, 32, 32), 100), space
    with pytest.raises(SpaceError) as caught:
        space.with_input(input_size=(3, 0, 32))
    assert str(caught.value).endswith("input: must be 3 positive integers (C, H, W), got (3, 0, 32)"), str(caught.value)


def test_load_space_reads_budget_constraints_and_defaults(write_space: Callable[..., Path]) -> None:
    path = write_space(
        STAGES + "constraints: {max_params: 100000, max_macs: 5000000, max_latency_ms: 2.5}\n"
        "training: {epochs: 2, train_fraction: 0.2, batch_size: 64, lr: 0.1, schedule: cosine}\n"
    )
    space = load_space(path)
    assert tuple(space.constraints.limit(m) for m in ("params", "macs", "latency_ms")) == (
        100000,
        5000000,
        2.5,
    ), space.constraints
    assert (space.training.epochs, space.training.schedule, space.training.lr) == (2, "cosine", 0.1), space.training
    assert space.parameterisation == "static", space.parameterisation
    assert space.example().stem == Stem(), f"unset stem knobs take the Architecture's defaults: {space.example().stem}"


def test_readme_example_loads_and_holds_its_baseline(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "spaces" / "README.md").read_text()
    example = readme.split("```yaml\n")[1].split("```")[0]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    space = load_space(path)
    assert space.baseline("small_dense").stages[0].depth == 4, "the example's baseline"
    assert not space.size_is_exact, "the example has a continuous range (head.dropout on a log scale)"


# --- the data set: a built-in, a source, or the run's; the images space --------------------------------

SOURCE_HEADER = "description: d\nobjectives: {accuracy: maximize}\n"


def test_images_space_takes_input_and_classes_from_the_data() -> None:
    space = load_space("images")
    assert (space.dataset, space.input_size, space.num_classes) == (None, None, None), space
    assert space.auto_stem and space.data_options is None, space
    assert [o.metric for o in space.objectives] == ["accuracy", "macs"], space.objectives
    assert space.size_is_exact and space.size() > 10**9, space.size()
    styles = {
        side: list(space.with_input(input_size=(3, side, side), num_classes=2).stem["style"].values())
        for side in (28, 96, 127, 128, 224)
    }
    assert styles == {28: ["small"], 96: ["small"], 127: ["small"], 128: ["imagenet"], 224: ["imagenet"]}, styles


def test_a_space_without_its_input_says_so_before_anything_is_built() -> None:
    """The images space leaves input and classes to its data: until ``with_input``, nothing can be counted."""
    from spaces import precheck

    space = load_space("images")
    unknown = "is not known: the space states none and no data set has given it yet"
    with pytest.raises(SpaceError) as caught:
        precheck(space, space.example())
    assert str(caught.value) == f"spaces/images.yaml: input: {unknown}", str(caught.value)
    with pytest.raises(SpaceError) as caught:
        space.with_input(input_size=(3, 32, 32)).model_shape()
    assert str(caught.value) == f"spaces/images.yaml: num_classes: {unknown}", str(caught.value)
    shaped = space.with_input(input_size=(3, 32, 32), num_classes=5)
    assert shaped.model_shape() == ((3, 32, 32), 5) and precheck(shaped, shaped.example()) is None


@pytest.mark.parametrize(("shape", "stem"), [((1, 28, 28), "small"), ((3, 224, 224), "imagenet")])
def test_images_space_samples_build_at_small_and_imagenet_sizes(shape: tuple[int, int, int], stem: str) -> None:
    """Every sample the closed form admits builds with the parameters it counted (torch's count is the reference)."""
    import optuna
    import torch

    from evaluation import build_model, count
    from spaces import precheck, sample_architecture

    space = load_space("images").with_input(input_size=shape, num_classes=2)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    admitted = 0
    for _ in range(12):
        trial = study.ask()
        arch = sample_architecture(space, trial)
        study.tell(trial, 0.0)
        assert arch.stem.style == stem, arch.stem
        if precheck(space, arch) is not None:
            continue
        admitted += 1
        model = build_model(arch, shape, 2)
        assert sum(p.numel() for p in model.parameters()) == count(arch, shape, 2).params, arch.describe()
        if admitted == 1:
            with torch.no_grad():
                assert model.eval()(torch.zeros(1, *shape)).shape == (1, 2), arch.describe()
    assert admitted >= 6, f"only {admitted} of 12 samples fit {shape}"


def test_space_dataset_as_a_source_mapping(tmp_path: Path) -> None:
    from evaluation.images import SourceOptions

    path = tmp_path / "spaces" / "cells.yaml"
    path.parent.mkdir()
    path.write_text(
        SOURCE_HEADER
        + "dataset: {source: 'folder:../data/cells', resolution: 96, channels: 3, resize: pad, classes: [a, b]}\n"
        + STAGES
    )
    space = load_space(path)
    assert space.dataset == f"folder:{tmp_path / 'data' / 'cells'}", "a relative path is the space file's folder's"
    assert space.data_options == SourceOptions(resolution=96, channels=3, resize="pad", classes=("a", "b"))
    assert (space.input_size, space.num_classes) == (None, None), "a source gives its input and classes"
    path.write_text(SOURCE_HEADER + "dataset: csv:/abs/labels.csv\ninput: [1, 32, 32]\n" + STAGES)
    space = load_space(path)
    assert (space.dataset, space.input_size, space.num_classes) == ("csv:/abs/labels.csv", (1, 32, 32), None)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            "dataset: fashion_mnist\n",
            "input: is required with the built-in data set fashion_mnist (a folder:, csv: or npz: source gives it)",
            id="builtin-without-input",
        ),
        pytest.param(
            "dataset: {source: folder:x, colour: true}\n",
            "dataset.colour: unknown key; expected one of source, resolution, channels, resize, background, "
            "val_fraction, test_fraction, split_seed, flip, strict, classes",
            id="unknown-option",
        ),
        pytest.param("dataset: {resolution: 32}\n", "dataset.source: is required", id="no-source"),
        pytest.param(
            "dataset: {source: digits, resolution: 32}\n",
            "dataset.source: options apply to folder:, csv: and npz: sources; 'digits' is not one "
            "(a built-in data set is written as dataset: NAME)",
            id="options-on-builtin",
        ),
        pytest.param(
            "dataset: {source: folder:x, channels: 2}\n", "dataset: channels must be 1 or 3, got 2", id="channels"
        ),
        pytest.param(
            "dataset: {source: folder:x, resolution: 0}\n",
            "dataset.resolution: value (0) must be >= 1",
            id="resolution",
        ),
        pytest.param("dataset: 'folder:'\n", "dataset: folder:: the source needs a path after 'folder:'", id="no-path"),
    ],
)
def test_space_dataset_mistakes_are_one_line(tmp_path: Path, document: str, expected: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(SOURCE_HEADER + document + STAGES)
    with pytest.raises(SpaceError) as caught:
        load_space(path)
    assert str(caught.value) == f"{path}: {expected}", str(caught.value)
