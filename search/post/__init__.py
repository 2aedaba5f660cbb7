"""After a search: full training of chosen architectures, finalize over seeds with the test
set read once, ablations of one knob, and exports of the best configurations."""

from search.post.ablate import ablate
from search.post.export import export_study
from search.post.finalize import finalize_study
from search.post.full_training import train_and_test

__all__ = ["ablate", "export_study", "finalize_study", "train_and_test"]
