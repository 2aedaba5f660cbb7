"""Helpers for the tests and benchmarks of the toolkit (as ``optuna.testing``): nothing in
the engine imports them."""

from search.testing.postgres import PostgresServer, PostgresUnavailable, throwaway_server

__all__ = ["PostgresServer", "PostgresUnavailable", "throwaway_server"]
