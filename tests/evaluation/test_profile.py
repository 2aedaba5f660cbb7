"""Counts checked against arithmetic worked by hand from the blocks' formulas.

Notation: a k x k conv from c_in to c_out has c_in*c_out*k*k weights (+ c_out
biases) and costs weights * H_out * W_out MACs; BN(c) has 2c parameters and
no MACs; linear c -> n has c*n + n parameters and c*n MACs.
"""

import json
import time

import pytest

from evaluation import Architecture, build_model, count, preset, save_architecture
from evaluation.profile import (
    LATENCY_MAX_ROUNDS,
    LATENCY_MAX_SPREAD,
    LATENCY_ROUNDS,
    Latency,
    Timing,
    count_macs,
    count_macs_torch,
    latency_clock,
    measure_latency,
    profile_model,
    time_calls,
)
from search.cli import main


def d2l_densenet_at_96px_10_classes() -> tuple[int, int]:
    """Parameters and MACs of the d2l DenseNet on 1x96x96 inputs (convs have biases)."""
    params = macs = 0
    # Stem: 7x7/2 conv 1 -> 64 gives 48x48, BN(64), max pool to 24x24.
    params += 1 * 64 * 49 + 64 + 2 * 64
    macs += 1 * 64 * 49 * 48 * 48
    channels, side = 64, 24
    for block in range(4):
        # Four BN-ReLU-Conv3x3 layers of growth 32; layer i sees channels + 32i.
        for i in range(4):
            c_in = channels + 32 * i
            params += 2 * c_in + c_in * 32 * 9 + 32
            macs += c_in * 32 * 9 * side * side
        channels += 4 * 32
        if block < 3:
            # Transition: BN, 1x1 conv to half the channels, 2x2 average pool.
            params += 2 * channels + channels * (channels // 2) + channels // 2
            macs += channels * (channels // 2) * side * side
            channels, side = channels // 2, side // 2
    # Head: BN(248), global pool, linear 248 -> 10.
    params += 2 * channels + channels * 10 + 10
    macs += channels * 10
    return params, macs


def residual_hybrid_at_224px_2_classes() -> tuple[int, int]:
    """Parameters and MACs of densenet_residual_hybrid on 3x224x224 inputs (no biases).

    A unit on c channels: 1x1 c -> c/4, 3x3 c/4 -> c/4, 1x1 c/4 -> c has
    c^2/4 + 9c^2/16 + c^2/4 = 17c^2/16 weights and BN(c), BN(c/4), BN(c/4),
    i.e. 3c parameters; its output cat(x, x + F(x)) has 2c channels.
    """
    params = macs = 0
    params += 3 * 64 * 49 + 2 * 64  # 7x7/2 conv 3 -> 64 and BN, output 112x112
    macs += 3 * 64 * 49 * 112 * 112
    channels, side = 64, 56  # after the 3x3/2 max pool
    for stage, depth in enumerate((2, 4, 3, 2)):
        for _ in range(depth):
            params += 17 * channels**2 // 16 + 3 * channels
            macs += 17 * channels**2 // 16 * side * side
            channels *= 2
        if stage < 3:
            params += 2 * channels + channels * (channels // 2)
            macs += channels * (channels // 2) * side * side
            channels, side = channels // 2, side // 2
    params += 2 * channels + channels * 2 + 2  # BN(16384), linear 16384 -> 2
    macs += channels * 2
    return params, macs


# Two CSP dense stages (split, growth 4, bottleneck 2 x 4 = 8 channels) on 1x8x8 inputs.
CSP_DENSE = {
    "stem": {"style": "small", "width": 16},
    "stages": [
        {"block": "csp_dense", "depth": 2, "split": 0.5, "growth_rate": 4, "bn_size": 2, "fusion": "both"},
        {"block": "csp_dense", "depth": 2, "split": 0.25, "growth_rate": 4, "bn_size": 2, "fusion": "first"},
    ],
    "transitions": [{"compression": 0.5, "pooling": "avg"}],
    "head": {"norm": True},
}


def csp_dense_at_8px_10_classes() -> tuple[int, int]:
    """Parameters and MACs of ``CSP_DENSE`` on 1x8x8 inputs (no biases).

    A dense layer on c channels: BN(c), 1x1 c -> 8, BN(8), 3x3 8 -> 4, i.e.
    2c + 8c + 16 + 288 parameters and (8c + 288) * H * W MACs. A CSP
    transition on c channels is BN(c) and a 1x1 c -> c: 2c + c^2 parameters.
    """
    params = macs = 0
    params += 1 * 16 * 9 + 2 * 16  # 3x3 stem 1 -> 16 and BN, 8x8
    macs += 1 * 16 * 9 * 64

    def dense_layers(c: int, pixels: int) -> None:
        nonlocal params, macs
        for c_in in (c, c + 4):
            params += 2 * c_in + 8 * c_in + 16 + 288
            macs += (8 * c_in + 288) * pixels

    def csp_transition(c: int, pixels: int) -> None:
        nonlocal params, macs
        params += 2 * c + c * c
        macs += c * c * pixels

    # Stage 1, 16 channels at 8x8: 8 through two dense layers (8 -> 16), 8 bypass;
    # partial transition on 16, fusion transition on 8 + 16 = 24.
    dense_layers(8, 64)
    csp_transition(16, 64)
    csp_transition(24, 64)
    # Transition: BN(24), 1x1 24 -> 12, average pool to 4x4.
    params += 2 * 24 + 24 * 12
    macs += 24 * 12 * 64
    # Stage 2, 12 channels at 4x4: int(12 * 0.25) = 3 dense (3 -> 11), 9 bypass;
    # fusion first: only the fusion transition, on 9 + 11 = 20.
    dense_layers(3, 16)
    csp_transition(20, 16)
    params += 2 * 20 + 20 * 10 + 10  # head: BN(20), linear 20 -> 10
    macs += 20 * 10
    return params, macs


CASES = {
    "d2l_densenet": ((1, 96, 96), 10, d2l_densenet_at_96px_10_classes),
    "densenet_residual_hybrid": ((3, 224, 224), 2, residual_hybrid_at_224px_2_classes),
    "csp_dense": ((1, 8, 8), 10, csp_dense_at_8px_10_classes),
}


def _architecture(name: str) -> Architecture:
    return Architecture.from_dict(CSP_DENSE) if name == "csp_dense" else preset(name)


def test_hand_arithmetic_reproduces_the_numbers_written_down():
    # The d2l figure written out once more, so the arithmetic itself is checked.
    assert d2l_densenet_at_96px_10_classes() == (758_226, 129_077_168), "d2l hand count changed"
    assert residual_hybrid_at_224px_2_classes()[1] == 18_622_955_520, "hybrid hand count changed"
    assert csp_dense_at_8px_10_classes() == (3_630, 145_096), "CSP hand count changed"


@pytest.mark.parametrize("name", CASES)
def test_counts_match_hand_arithmetic(name):
    input_size, classes, by_hand = CASES[name]
    params, macs = by_hand()
    formula = count(_architecture(name), input_size, classes)
    assert (formula.params, formula.macs) == (params, macs), f"{name}: closed form {formula} vs hand {params, macs}"
    model = build_model(_architecture(name), input_size, classes)
    assert sum(p.numel() for p in model.parameters()) == params, f"{name}: built model's parameters"
    assert count_macs(model, input_size) == macs, f"{name}: fvcore MACs"
    assert count_macs_torch(model, input_size) == macs, f"{name}: FlopCounterMode MACs / 2"


@pytest.mark.parametrize("name", CASES)
def test_profile_command_json_prints_hand_checked_counts(name, capsys, tmp_path):
    input_size, classes, by_hand = CASES[name]
    params, macs = by_hand()
    target = name
    if name == "csp_dense":  # not a preset: profiled from a YAML file, as a user writes one
        target = str(tmp_path / "csp.yaml")
        save_architecture(_architecture(name), target)
    code = main(
        [
            "profile",
            target,
            "--input",
            ",".join(map(str, input_size)),
            "--num-classes",
            str(classes),
            "--json",
            "--repeats",
            "1",
            "--batch-size",
            "1",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == 0, "profile exits 0"
    assert (result["params"], result["macs"], result["macs_torch"]) == (params, macs, macs), f"{name}: {result}"
    assert result["latency_ms"] > 0, "latency is measured"


def test_profile_model_reports_positive_latency_and_activations():
    model = build_model(preset("d2l_densenet"), (1, 64, 64), 10)
    profile = profile_model(model, (1, 64, 64), batch_size=2, repeats=2)
    assert profile.latency_ms > 0 and profile.latency_batch_ms > 0, f"latencies: {profile}"
    assert profile.activation_mb > 0, "a training step saves activations"
    assert profile.peak_train_mb is None, "peak CUDA memory is only reported on CUDA"


def test_profile_command_unknown_name_exits_2_with_one_line(capsys):
    code = main(["profile", "densenet999"])
    err = capsys.readouterr().err
    assert code == 2, "a user's mistake exits with 2"
    assert err.count("\n") == 1 and err.startswith("error: densenet999: neither a preset nor a file"), err


class ScriptedClock:
    """A clock that advances only when the timed call runs, by the duration the script gives
    each call in turn (milliseconds): latency measurement without a real machine's noise."""

    def __init__(self, durations_ms: list[float]) -> None:
        self.durations = iter(durations_ms)
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def run(self) -> None:
        self.now += next(self.durations) / 1000.0


def _rounds(*per_round: float, repeats: int = 4, warmup: int = 2) -> ScriptedClock:
    """A clock whose calls take ``per_round[i]`` ms in round i, after ``warmup`` calls of 0."""
    return ScriptedClock([0.0] * warmup + [ms for ms in per_round for _ in range(repeats)])


def test_time_calls_steady_calls_stop_after_the_first_rounds() -> None:
    clock = _rounds(*[2.0] * LATENCY_ROUNDS)
    latency = time_calls(clock.run, Timing(repeats=4), clock=clock)
    assert latency == Latency(ms=pytest.approx(2.0), spread=pytest.approx(0.0, abs=1e-9), rounds=5, settled=True), (
        latency
    )


def test_time_calls_a_burst_of_load_is_measured_again_not_reported() -> None:
    # Three of the first five rounds under load: their median is the burst (200 ms); the spread check
    # measures again until the middle half of the last five rounds agree: after round 7, [200, 2, 2, 2, 2].
    clock = _rounds(200.0, 200.0, 200.0, 2.0, 2.0, 2.0, 2.0, 2.0)
    latency = time_calls(clock.run, Timing(repeats=4), clock=clock)
    assert latency == Latency(ms=pytest.approx(2.0), spread=pytest.approx(0.0, abs=1e-9), rounds=7, settled=True), (
        latency
    )
    clock = _rounds(200.0, 2.0)
    one_round = time_calls(clock.run, Timing(repeats=4, rounds=1, max_rounds=1), clock=clock)
    assert (one_round.rounds, one_round.ms) == (1, pytest.approx(200.0)), "one round, as trials had: the burst passes"


def test_time_calls_spikes_inside_a_round_do_not_move_its_median() -> None:
    durations = [0.0, 0.0] + [2.0, 2.0, 90.0, 2.0] * LATENCY_ROUNDS  # one call in four is preempted
    clock = ScriptedClock(durations)
    assert time_calls(clock.run, Timing(repeats=4), clock=clock).ms == pytest.approx(2.0), (
        "each round ignores its spike"
    )


def test_time_calls_that_never_settle_stop_at_the_cap_and_say_so() -> None:
    alternating = [1.0, 3.0] * (LATENCY_MAX_ROUNDS // 2)
    clock = _rounds(*alternating)
    latency = time_calls(clock.run, Timing(repeats=4), clock=clock)
    # The median of 1s and 3s is 2; their quartiles 1 and 3: the spread (3 - 1) / 2 = 1, far above the bound.
    assert (latency.rounds, latency.settled) == (LATENCY_MAX_ROUNDS, False), latency
    assert latency.ms == pytest.approx(2.0) and latency.spread == pytest.approx(1.0), latency
    assert latency.spread > LATENCY_MAX_SPREAD, "the spread is recorded, above the bound"


def test_a_timing_that_cannot_answer_is_refused_and_a_total_is_spread_over_rounds() -> None:
    for impossible in ({"repeats": 0}, {"rounds": 0}, {"rounds": 6, "max_rounds": 5}):
        with pytest.raises(ValueError, match="need repeats >= 1 and 1 <= rounds <= max_rounds"):
            Timing(**impossible)
    # 10 calls in all: LATENCY_ROUNDS (5) rounds of 2, at most 20 rounds; 3 calls: 3 rounds of 1, at most 12.
    assert Timing.total(10) == Timing(repeats=2, rounds=5, max_rounds=20)
    assert Timing.total(3) == Timing(repeats=1, rounds=3, max_rounds=12)
    assert Timing.total(0) == Timing(repeats=1, rounds=1, max_rounds=4), "no calls asked: one round of one"


def test_measure_latency_keeps_its_signature_and_reports_the_spread():
    model = build_model(preset("d2l_densenet"), (1, 32, 32), 10)
    model.train()
    latency = measure_latency(model, (1, 32, 32), timing=Timing(repeats=2))
    assert latency.ms > 0 and latency.rounds >= LATENCY_ROUNDS and latency.spread >= 0, latency
    assert latency.settled == (latency.spread <= LATENCY_MAX_SPREAD), latency
    assert measure_latency(model, (1, 32, 32), batch_size=2, timing=Timing(repeats=2, warmup=1)).ms > 0
    assert model.training, "the model's mode is restored"


def test_latency_clock_is_the_thread_cpu_time_only_when_the_pass_runs_on_this_thread_alone() -> None:
    # Linux's thread clock counts nanoseconds; a thread waiting for a core does not advance it.
    assert latency_clock(threads=1, cuda=False) is time.thread_time, "one CPU thread: its CPU time"
    assert latency_clock(threads=2, cuda=False) is time.perf_counter, "several threads: wall time"
    assert latency_clock(threads=1, cuda=True) is time.perf_counter, "a GPU works apart from the thread: wall time"
    started = time.thread_time()
    time.sleep(0.05)
    assert time.thread_time() - started < 0.01, "time spent not running (here: asleep) is not counted"
