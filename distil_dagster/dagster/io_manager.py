"""``DistilDagsterIOManager``: the Dagster face of the cache.

The engine writes a leaf's Parquet batches into the signature folder and commits them (atomic
rename, then a journal line); a leaf op hands the IO manager a :class:`LeafOutput` naming those
batches. ``handle_output`` records what the batches hold: ``dagster/row_count``, the folder,
``dagster/column_schema``, a markdown preview and the signature. ``load_input`` gives downstream
assets the leaf as a memory-mapped ``datasets.Dataset`` (or ``pyarrow.Table`` / ``LeafOutput``
when the input is annotated so). It finds the leaf through the asset's latest materialization
(the run config may have changed the signature), else through the op's ``Out`` metadata (the
pipeline as defined); both work in a later run that contains only the downstream asset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from dagster import (
    AssetKey,
    ConfigurableIOManager,
    DagsterInstance,
    DagsterInvariantViolationError,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from datasets import Dataset
from pydantic import Field

from distil_dagster.dagster.leaf_data import LeafOutput, arrow_file, leaf_output, open_dataset, open_table
from distil_dagster.errors import DistilDagsterError

__all__ = ["OUT_METADATA_KEYS", "DistilDagsterIOManager", "LeafDataError", "markdown_preview", "materialized_folder"]

OUT_METADATA_KEYS = {
    "step": "distil_dagster/step",
    "root": "distil_dagster/signature_folder",
    "enable_metadata": "distil_dagster/enable_metadata",
}
"""Keys of the leaf ops' ``Out`` metadata (and of the recorded materialization metadata)."""

_CELL_CHARS = 60


class LeafDataError(DistilDagsterError, ValueError):
    """A leaf's data cannot be recorded or loaded through the IO manager (the message says why)."""


def _cell(value: Any) -> str:
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"


def markdown_preview(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A markdown table of ``rows`` (long cells cut)."""
    if not rows:
        return "*(no rows)*"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


class DistilDagsterIOManager(ConfigurableIOManager):
    """Records leaf outputs of distil_dagster pipelines and loads them for downstream assets."""

    preview_rows: int = Field(default=5, ge=0, description="Rows shown in the materialization's preview table.")

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if not isinstance(obj, LeafOutput):
            raise LeafDataError(
                f"DistilDagsterIOManager stores the leaf outputs of build_pipeline_assets, got {type(obj).__name__} "
                f"for {context.asset_key.to_user_string() if context.has_asset_key else context.name}; "
                "give other assets another io_manager_key."
            )
        file_rows = obj.part_rows()
        schema = obj.schema()
        if sum(file_rows) != obj.committed_rows:
            raise LeafDataError(
                f"Leaf '{obj.step}' in {obj.data_dir}: Parquet files hold {sum(file_rows)} rows but the commit "
                f"journal counts {obj.committed_rows}; the cache is inconsistent, rematerialize with use_cache=False."
            )
        columns = [TableColumn(name=f.name, type=str(f.type)) for f in schema]
        context.add_output_metadata(
            {
                "dagster/row_count": sum(file_rows),
                "dagster/column_schema": TableSchema(columns=columns),
                "path": MetadataValue.path(str(obj.data_dir)),
                "files": len(obj.files),
                "signature": obj.signature,
                OUT_METADATA_KEYS["root"]: str(obj.root),
                "preview": MetadataValue.md(markdown_preview(obj.preview(self.preview_rows), schema.names)),
            }
        )

    def load_input(self, context: InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is None:
            raise LeafDataError(f"Input '{context.name}' has no upstream output to load from the distil_dagster cache.")
        definition = upstream.definition_metadata or {}
        step = definition.get(OUT_METADATA_KEYS["step"])
        if step is None:
            raise LeafDataError(f"Input '{context.name}' does not come from a distil_dagster leaf step.")
        root = self._materialized_root(context) or Path(str(definition[OUT_METADATA_KEYS["root"]]))
        output = leaf_output(root, str(step), bool(definition.get(OUT_METADATA_KEYS["enable_metadata"], False)))
        wanted = context.dagster_type.typing_type
        if wanted is LeafOutput:
            return output
        path = arrow_file(output)
        if wanted is pa.Table:
            return open_table(path)
        if wanted in (Dataset, Any, object) or wanted is None:
            return open_dataset(path)
        raise LeafDataError(
            f"Input '{context.name}' is annotated {wanted!r}; a distil_dagster leaf loads as datasets.Dataset, "
            "pyarrow.Table or LeafOutput."
        )

    @staticmethod
    def _materialized_root(context: InputContext) -> Path | None:
        if not context.has_asset_key:
            return None
        try:
            instance = context.instance
        except DagsterInvariantViolationError:  # an input context built without an instance
            return None
        return materialized_folder(instance, context.asset_key)


def materialized_folder(instance: DagsterInstance, key: AssetKey) -> Path | None:
    """The signature folder recorded by the asset's latest materialization, if ``instance`` has one."""
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return None
    value = materialization.metadata.get(OUT_METADATA_KEYS["root"])
    text = getattr(value, "value", value)
    return Path(text) if isinstance(text, str) else None
