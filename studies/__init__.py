"""Studies behind docs/measurements.md: run from the repository, not shipped in the wheel."""
