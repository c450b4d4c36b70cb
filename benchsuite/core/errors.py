"""Errors that are the user's to fix (a recipe, model, dataset, path or grant), as opposed to
failures of the suite or the machine.

A `UserError` is deterministic: a worker dead-letters it at once instead of retrying the job,
the waiting side raises it as a `UserError` again (`broker.executor.JobUserError`), and a test
fails with its message alone, without a traceback. An `OperatorError` (a full Redis or disk) is
shown the same way but retried like any failure of the machine.
"""

from __future__ import annotations


class UserError(ValueError):
    """Wrong input: the message says what and how to fix it."""


class OperatorError(RuntimeError):
    """A service or the machine refuses (Redis at its maxmemory, a full disk under its data):
    not the user's input, so not dead-lettered at once (a retry may succeed once it is fixed),
    but shown like a `UserError`: its message names the cause and what to do, no traceback."""
