"""From an architecture to numbers: the Architecture language, model building,
presets, profiling, data and brief training. Knows nothing of Optuna or of
search-space files."""

from evaluation.architecture import (
    Architecture,
    DenseSpec,
    DualPathSpec,
    Head,
    ResidualDenseSpec,
    ResidualSpec,
    Stage,
    Stem,
    Transition,
)
from evaluation.builder import Network, build_model
from evaluation.counts import Counts, count
from evaluation.data import DATASETS, DataSplits, load_dataset
from evaluation.errors import ArchitectureError, ConfigError, DataError, ToolkitError
from evaluation.io import load_architecture, save_architecture
from evaluation.metrics import METRICS, Metric, get_metric
from evaluation.presets import preset, preset_names
from evaluation.profile import Profile, profile_model
from evaluation.torchvision_compat import load_torchvision_state_dict
from evaluation.train import EpochReport, TrainConfig, TrainResult

__all__ = [
    "Architecture",
    "ArchitectureError",
    "ConfigError",
    "Counts",
    "DATASETS",
    "DataError",
    "DataSplits",
    "DenseSpec",
    "DualPathSpec",
    "EpochReport",
    "METRICS",
    "Metric",
    "Head",
    "Network",
    "Profile",
    "ResidualDenseSpec",
    "ResidualSpec",
    "Stage",
    "Stem",
    "TrainConfig",
    "ToolkitError",
    "TrainResult",
    "Transition",
    "build_model",
    "count",
    "get_metric",
    "load_architecture",
    "load_dataset",
    "load_torchvision_state_dict",
    "preset",
    "preset_names",
    "profile_model",
    "save_architecture",
]
