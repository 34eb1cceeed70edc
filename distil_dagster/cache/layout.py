"""Where things live inside ``<cache_dir>/<pipeline name>/<signature>/``.

```
pipeline.yaml                      the pipeline (secrets excluded)
pipeline.log                       the run's log
batch_manager.json                 snapshot: status and per-step counters (no row data)
batch_manager_steps/<step>.json    snapshot per step: committed batches and rows
commits.jsonl                      the commit journal, the source of truth (one line per batch)
data/<leaf>/00001.parquet ...      leaf outputs, file number = seq_no + 1 of its first batch
                                   (batches written at once share a file; see journal.first_row)
steps/<step>/<writer>-001.seg ...  intermediate outputs of non-leaf steps, appended per writer
                                   (the journal counts each batch by file, offset and size)
arrow/<leaf>.<fingerprint>.arrow   a leaf's rows in one file, memory-mapped by Distisets and assets
artifacts/<step>/<name>/           what steps saved with ``save_artifact`` (plus its metadata.json)
```
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from distil_dagster.cache.atomic import make_private_dirs

__all__ = ["CacheLayout"]


@dataclass(frozen=True)
class CacheLayout:
    """Paths of one pipeline signature's cache folder."""

    root: Path

    @classmethod
    def for_pipeline(cls, cache_dir: Path, name: str, signature: str) -> CacheLayout:
        return cls(Path(cache_dir) / name / signature)

    @property
    def pipeline_yaml(self) -> Path:
        return self.root / "pipeline.yaml"

    @property
    def log_file(self) -> Path:
        return self.root / "pipeline.log"

    @property
    def snapshot(self) -> Path:
        return self.root / "batch_manager.json"

    @property
    def steps_snapshot_dir(self) -> Path:
        return self.root / "batch_manager_steps"

    @property
    def journal(self) -> Path:
        return self.root / "commits.jsonl"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def steps_dir(self) -> Path:
        return self.root / "steps"

    @property
    def arrow_dir(self) -> Path:
        return self.root / "arrow"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    def leaf_file(self, step: str, seq_no: int, attempt: int = 0) -> Path:
        """The Parquet file of output batch ``seq_no`` of leaf ``step`` (and of the batches
        written with it)."""
        return self.root / self.leaf_name(step, seq_no, attempt)

    @staticmethod
    def leaf_name(step: str, seq_no: int, attempt: int = 0) -> str:
        """``leaf_file`` relative to the folder, as the journal records it. ``attempt`` > 0: a
        batch recomputed while the file of its number still holds other counted batches."""
        return f"data/{step}/{seq_no + 1:05d}{f'-{attempt}' if attempt else ''}.parquet"

    def segment_dir(self, step: str) -> Path:
        """The folder of the segments holding ``step``'s intermediate batches."""
        return self.steps_dir / step

    def relative(self, path: Path) -> str:
        text, root = str(path), str(self.root)
        if text.startswith(root + os.sep):
            return text[len(root) + 1 :].replace(os.sep, "/")
        return path.relative_to(self.root).as_posix()

    def create(self) -> None:
        """Create the folder, and the parents it lacks, with user-only permissions (0o700).

        ``mkdir``'s mode is cut by the umask, hence the explicit ``chmod``. The signature folder
        and the pipeline's folder are made user-only even when they exist (written by an older
        version); an existing ``cache_dir`` and its parents are not ours to change.
        """
        make_private_dirs(self.root)
        for path in (self.root, self.root.parent):
            if path.stat().st_uid == os.getuid():
                os.chmod(path, 0o700)

    def clear_outputs(self) -> None:
        """Remove every output and state file (``use_cache=False``); keeps the lock and the log."""
        for path in (self.data_dir, self.steps_dir, self.steps_snapshot_dir, self.arrow_dir, self.artifacts_dir):
            shutil.rmtree(path, ignore_errors=True)
        for path in (self.journal, self.snapshot):
            path.unlink(missing_ok=True)
