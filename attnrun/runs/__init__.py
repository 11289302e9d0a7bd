"""Run folders and run records (``metrics.json``)."""

from attnrun.runs.folders import reserve_run_dir
from attnrun.runs.record import RunRecord, library_versions

__all__ = ["RunRecord", "library_versions", "reserve_run_dir"]
