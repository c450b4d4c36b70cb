"""Errors that are the user's to fix (a recipe, model, dataset, path or grant), as opposed to
failures of the suite or the machine.

A `UserError` is deterministic: a worker dead-letters it at once instead of retrying the job,
the waiting side raises it as a `UserError` again (`broker.executor.JobUserError`), and a test
fails with its message alone, without a traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Wrong input: the message says what and how to fix it."""
