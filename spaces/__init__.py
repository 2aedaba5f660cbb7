"""Declarative search spaces: YAML files over the Architecture language, and
the bridge from an Optuna trial to an Architecture. See README.md."""

from spaces.errors import SpaceError
from spaces.sample import enqueue_architecture, precheck, sample_architecture
from spaces.schema import builtin_space_names, load_space
from spaces.space import Constraints, Objective, Space, TrainingBudget

__all__ = [
    "Constraints",
    "Objective",
    "Space",
    "SpaceError",
    "TrainingBudget",
    "builtin_space_names",
    "enqueue_architecture",
    "load_space",
    "precheck",
    "sample_architecture",
]
