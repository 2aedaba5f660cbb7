"""From an architecture to numbers: the Architecture language, model building,
presets, profiling, data, brief training and deployable exports (ONNX). Knows
nothing of Optuna or of search-space files. Block specs (``DenseSpec``, ...)
live with their families in ``evaluation.blocks``."""

from evaluation.architecture import Architecture, Head, Stage, Stem, Transition
from evaluation.blocks import BLOCKS
from evaluation.builder import Network, build_model
from evaluation.counts import Counts, count
from evaluation.data import DATASETS, DataSplits, load_dataset
from evaluation.deploy import export_onnx, onnx_discrepancy, torch_formats
from evaluation.errors import ArchitectureError, ConfigError, DataError, ExportError, ToolkitError
from evaluation.io import load_architecture, save_architecture
from evaluation.metrics import METRICS, Metric, get_metric
from evaluation.presets import preset, preset_names
from evaluation.profile import Profile, profile_model
from evaluation.resolution import smallest_input_side
from evaluation.torchvision_compat import load_torchvision_state_dict
from evaluation.training import (
    Checkpoint,
    EpochReport,
    TrainConfig,
    TrainResult,
    evaluate,
    planned_images,
    resolve_device,
    resolve_precision,
    train,
)

__all__ = [
    "Architecture",
    "ArchitectureError",
    "BLOCKS",
    "Checkpoint",
    "ConfigError",
    "Counts",
    "DATASETS",
    "DataError",
    "DataSplits",
    "EpochReport",
    "ExportError",
    "METRICS",
    "Metric",
    "Head",
    "Network",
    "Profile",
    "Stage",
    "Stem",
    "TrainConfig",
    "ToolkitError",
    "TrainResult",
    "Transition",
    "build_model",
    "count",
    "evaluate",
    "export_onnx",
    "get_metric",
    "load_architecture",
    "load_dataset",
    "load_torchvision_state_dict",
    "onnx_discrepancy",
    "planned_images",
    "preset",
    "preset_names",
    "profile_model",
    "resolve_device",
    "resolve_precision",
    "save_architecture",
    "smallest_input_side",
    "torch_formats",
    "train",
]
