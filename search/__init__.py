"""Architecture search: Optuna studies over the spaces of ``spaces``, evaluated
by ``evaluation``, and the ``python -m search`` command line."""
