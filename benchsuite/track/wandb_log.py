"""Weights & Biases: one run per case, grouped per pytest session, tagged with the git sha.

Offline by default: runs land in `experiments/wandb/wandb/offline-run-*` and can be uploaded
later with `wandb sync experiments/wandb/wandb/offline-run-*`. Online when the user asks
(`--wandb online`, or WANDB_MODE=online, or a WANDB_API_KEY in the environment). Every W&B
file (runs, cache, config, data) stays inside the project folder unless the user's environment
already points elsewhere. The session's `wandb-core` process is stopped at the end.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from benchsuite.core.paths import cache_dir, project_root
from benchsuite.core.result import CONFIG, SUMMARY, CaseResult, keys_for

MODES = ("offline", "online", "disabled")
SUMMARY_KEYS = keys_for(SUMMARY)
CONFIG_KEYS = keys_for(CONFIG)


def default_mode() -> str:
    if os.environ.get("WANDB_MODE") in MODES:
        return os.environ["WANDB_MODE"]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def wandb_dir() -> Path:
    """The folder W&B writes in (its runs under `<folder>/wandb/`): $WANDB_DIR, else the
    project's experiments/wandb, else (that one cannot be written) the system temp folder."""
    return where_wandb_writes()[0]


def where_wandb_writes() -> tuple[Path, str | None]:
    """`wandb_dir()` and, when it is not the project's own, why (else None). W&B would fall
    back to the system temp folder itself, without a word; the session header says it."""
    if given := os.environ.get("WANDB_DIR"):
        return Path(given), None  # the user's: checked before any work (paths.output_problems)
    own = project_root() / "experiments" / "wandb"
    there = next(p for p in (own, *own.parents) if p.exists())  # created at the first run
    if there.is_dir() and os.access(there, os.W_OK | os.R_OK):
        return own, None
    why = "not a folder" if not there.is_dir() else (
        "read-only file system" if _read_only(there) else "no permission")
    return Path(tempfile.gettempdir()), f"{own} cannot be written ({why})"


def _read_only(path: Path) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def wandb_notes(mode: str) -> list[str]:
    """Session header lines: where W&B writes when it is not the project's folder."""
    if mode == "disabled":
        return []
    folder, why = where_wandb_writes()
    return [f"benchsuite: W&B writes to {folder / 'wandb'}: {why}"] if why else []


def _keep_files_inside() -> None:
    base = cache_dir() / "wandb"
    os.environ.setdefault("WANDB_DIR", str(wandb_dir()))
    os.environ.setdefault("WANDB_CACHE_DIR", str(base / "cache"))
    os.environ.setdefault("WANDB_DATA_DIR", str(base / "data"))
    os.environ.setdefault("WANDB_CONFIG_DIR", str(base / "config"))
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)


MAX_TAG = 64  # W&B refuses a longer tag (a pydantic ValidationError from wandb.init)


def run_tags(row: CaseResult | dict) -> list[str]:
    """A case's W&B tags: git sha, recipe, model, each cut to W&B's 64 characters (a
    245-character recipe name failed wandb.init after the case's work, on every re-run)."""
    tags = [f"git:{row.get('git_sha', 'unknown')}", str(row["recipe"]), str(row["model"])]
    return [t if len(t) <= MAX_TAG else t[:MAX_TAG - 3] + "..." for t in tags if t]


class WandbTracker:
    """Logs result rows as W&B runs of `project`, in `group`."""

    def __init__(self, group: str, mode: str | None = None, project: str = "benchsuite") -> None:
        self.mode = mode or default_mode()
        if self.mode not in MODES:
            raise ValueError(f"--wandb must be one of {', '.join(MODES)}, got {self.mode!r}")
        self.group = group
        self.project = os.environ.get("WANDB_PROJECT", project)
        self._wandb: Any = None
        self.run_dirs: list[Path] = []

    def _module(self):
        if self._wandb is None:
            _keep_files_inside()
            import wandb

            self._wandb = wandb
        return self._wandb

    def log_case(self, row: CaseResult | dict, onnx: Path | None = None) -> str | None:
        """One run for one case; returns where to find it: the run's URL when online, its
        local folder when offline (None when disabled)."""
        if self.mode == "disabled":
            return None
        wandb = self._module()
        run = wandb.init(
            project=self.project, group=self.group, name=row["label"], job_type="latency-case",
            mode=self.mode, dir=os.environ["WANDB_DIR"], reinit="finish_previous",
            tags=run_tags(row),
            config={k: row.get(k) for k in CONFIG_KEYS},
            # no system metadata: it holds the process's argv, where a --redis-url password
            # would sit in clear (the conditions that matter are in the config above)
            settings=wandb.Settings(x_disable_meta=True),
        )
        from benchsuite.track.results_table import per_layer_frame

        try:
            run.summary.update({k: row.get(k) for k in SUMMARY_KEYS})
            table = per_layer_frame(row)
            if table is not None:
                run.log({"per_layer": wandb.Table(dataframe=table)})
            if onnx is not None and Path(onnx).is_file():
                artifact = wandb.Artifact(f"onnx-{row['case_id']}", type="model",
                                          metadata={"label": row["label"]})
                artifact.add_file(str(onnx), name="model.onnx")
                run.log_artifact(artifact)
            folder = Path(run.dir).parent
            where = run.url if self.mode == "online" and run.url else str(folder)
        finally:
            run.finish()
        self.run_dirs.append(folder)
        return where

    def close(self) -> None:
        """Stop the wandb-core service so no W&B process outlives the session."""
        if self._wandb is not None:
            self._wandb.teardown()
            self._wandb = None
