"""Reading the commit journal while a run may be appending to it: read-only, torn tail ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from distil_dagster.cache.journal import BatchRecord
from distil_dagster.dagster.leaf_data import read_committed
from distil_dagster.errors import CacheCorruptedError

pytestmark = pytest.mark.timeout(60)


def test_read_committed_skips_the_torn_tail_without_touching_the_file(tmp_path: Path) -> None:
    lines = [BatchRecord("a", 0, 4, False).to_json(), BatchRecord("a", 1, 4, True).to_json()]
    raw = "\n".join(lines) + '\n{"retract": ["a", 0]}\n' + lines[0][:10]
    (tmp_path / "commits.jsonl").write_text(raw)

    committed = read_committed(tmp_path)

    assert sorted(committed["a"]) == [1]  # batch 0 retracted; the torn line never counted
    assert (tmp_path / "commits.jsonl").read_text() == raw


def test_a_corrupted_middle_line_names_the_journal(tmp_path: Path) -> None:
    (tmp_path / "commits.jsonl").write_text("not json\n" + BatchRecord("a", 0, 1, True).to_json() + "\n")

    with pytest.raises(CacheCorruptedError, match=r"commits.jsonl is corrupted at line 1"):
        read_committed(tmp_path)
    assert read_committed(tmp_path / "missing") == {}
