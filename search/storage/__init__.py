"""Where a study lives and what it holds: studies and their storages, what each trial
records, the leases on running trials, and the claims that keep one trainer per architecture."""

from search.storage.claims import claim_architecture, wait_until_finished
from search.storage.leases import KeepAlive, LeasePolicy, fail_stale
from search.storage.records import TrialOutcome, TrialRecord, architecture_key, describe_architecture
from search.storage.studies import create_or_resume, finished_trials, make_storage, open_study, storage_url, study_dir

__all__ = [
    "KeepAlive",
    "LeasePolicy",
    "TrialOutcome",
    "TrialRecord",
    "architecture_key",
    "claim_architecture",
    "create_or_resume",
    "describe_architecture",
    "fail_stale",
    "finished_trials",
    "make_storage",
    "open_study",
    "storage_url",
    "study_dir",
    "wait_until_finished",
]
