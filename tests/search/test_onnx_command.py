"""``search export --format onnx`` (untrained graphs of a study's best) and ``search onnx RUN_DIR`` (a trained run).

Tolerance, as in tests/evaluation/test_deploy.py: atol 1e-4 + rtol 1e-4 x |PyTorch's logit|.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from evaluation import build_model, load_architecture
from search.cli import main

ATOL = RTOL = 1e-4
TINY_YAML = """\
stem: {style: small, width: 8}
stages:
  - {block: dense, depth: 2, growth_rate: 8, bn_size: 0}
  - {block: residual, depth: 1, stride: 2, unit: basic, width: 8}
transitions: [{compression: 0.5, pooling: none}]
"""


def _onnx_logits(path: Path, images: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": images.numpy()})
    return logits


def _torch_logits(model: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(images).numpy()


def test_export_format_onnx_writes_the_initialised_network_beside_yaml_and_python(
    tiny_space_file, studies_dir, tmp_path, capsys
):
    assert main(["run", "--space", str(tiny_space_file), "--study", "tiny", "--trials", "2", "--no-report"]) == 0
    plain, both = tmp_path / "plain", tmp_path / "both"
    assert main(["export", "tiny", "--top", "1", "--out", str(plain)]) == 0, "default export"
    assert sorted(p.name for p in plain.iterdir()) == ["best-1.yaml", "pareto.csv", "trials.csv"], "default unchanged"

    capsys.readouterr()
    args = ["export", "tiny", "--top", "1", "--out", str(both), "--format", "onnx", "--format", "python"]
    assert main(args) == 0, capsys.readouterr().err
    assert str(both / "best-1.onnx") in capsys.readouterr().out.splitlines(), "the written file is listed"
    assert {"best-1.yaml", "best-1.py", "best-1.onnx"} <= {p.name for p in both.iterdir()}
    metadata = {p.key: p.value for p in onnx.load(both / "best-1.onnx").metadata_props}
    assert metadata["weights"] == "untrained (seed 0)" and metadata["dataset"] == "digits", metadata

    torch.manual_seed(0)
    model = build_model(load_architecture(both / "best-1.yaml"), (1, 8, 8), 10)
    images = torch.randn(4, 1, 8, 8)
    np.testing.assert_allclose(_onnx_logits(both / "best-1.onnx", images), _torch_logits(model, images), ATOL, RTOL)


def test_onnx_command_exports_a_trained_run(tmp_path, capsys):
    config, run = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY_YAML)
    train = ["train", str(config), "--dataset", "digits", "--epochs", "1", "--precision", "fp32", "--out", str(run)]
    assert main(train) == 0, capsys.readouterr().err
    capsys.readouterr()

    assert main(["onnx", str(run)]) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert out.strip() == str(run / "model.onnx"), out
    assert "onnxruntime reproduces the PyTorch logits" in err, err
    model = build_model(load_architecture(run / "architecture.yaml"), (1, 8, 8), 10)
    model.load_state_dict(torch.load(run / "weights.pt", weights_only=True))
    images = torch.randn(3, 1, 8, 8)
    np.testing.assert_allclose(_onnx_logits(run / "model.onnx", images), _torch_logits(model, images), ATOL, RTOL)


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, f"exit {code}, stderr {err!r}"
    return err


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "no architecture.yaml; expected a folder written by 'search train'"),
        ({"architecture.yaml": TINY_YAML}, "no weights.pt"),
        (
            {"architecture.yaml": TINY_YAML, "weights": "other", "result.json": '{"input_size": [1, 8, 8]}'},
            "weights.pt does not fit",
        ),
        ({"architecture.yaml": TINY_YAML, "weights": "same"}, "result.json is missing or records no input_size"),
        ({"architecture.yaml": TINY_YAML, "weights": "same", "result.json": "[1"}, "result.json: not readable JSON"),
    ],
    ids=["empty", "no_weights", "other_weights", "no_input_size", "broken_json"],
)
def test_onnx_command_refuses_a_folder_it_cannot_export_in_one_line(files, expected, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    if "architecture.yaml" in files:
        (run / "architecture.yaml").write_text(files["architecture.yaml"])
    if "weights" in files:
        other = "stem: {style: small, width: 4}\nstages: [{block: residual, depth: 1, unit: basic, width: 4}]\n"
        text = TINY_YAML if files["weights"] == "same" else other
        (tmp_path / "weights.yaml").write_text(text)
        model = build_model(load_architecture(tmp_path / "weights.yaml"), (1, 8, 8), 10)
        torch.save(model.state_dict(), run / "weights.pt")
    if "result.json" in files:
        (run / "result.json").write_text(files["result.json"])
    err = _one_line_error(["onnx", str(run)], capsys)
    assert expected in err, err
    assert not (run / "model.onnx").exists()
