"""How a leaf step becomes a Dagster asset: one overridable ``get_*`` per asset attribute.

Subclass :class:`DistilDagsterTranslator` and pass it to ``build_pipeline_assets`` (and to
``build_pipeline_asset_checks``, so the checks target the same keys) to change keys, groups,
descriptions, metadata, tags, owners or code versions.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import AssetKey

from distil_dagster.dagster.names import identifier
from distil_dagster.pipeline.base import Pipeline
from distil_dagster.steps.base import _Step

__all__ = ["DistilDagsterTranslator", "LeafStep"]


@dataclass(frozen=True)
class LeafStep:
    """A leaf step of a pipeline, as the translator sees it.

    Attributes:
        pipeline: the pipeline the step belongs to.
        name: the step's name.
    """

    pipeline: Pipeline
    name: str

    @property
    def step(self) -> _Step:
        return self.pipeline.dag.step(self.name)

    @property
    def upstream(self) -> list[str]:
        """The step and all its ancestors, in topological order (what materializing it runs)."""
        return self.pipeline.dag.closure([self.name])


class DistilDagsterTranslator:
    """Default mapping of leaf steps to asset attributes."""

    def get_asset_key(self, leaf: LeafStep) -> AssetKey:
        """``<pipeline>/<step>``, with the pipeline name made an identifier."""
        return AssetKey([identifier(leaf.pipeline.name), leaf.name])

    def get_group_name(self, leaf: LeafStep) -> str | None:
        """The pipeline's name, made an identifier: one group per pipeline."""
        return identifier(leaf.pipeline.name)

    def get_description(self, leaf: LeafStep) -> str | None:
        """The step class's docstring summary and the chain of steps that produce it."""
        doc = inspect.getdoc(type(leaf.step)) or ""
        summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
        chain = " → ".join(leaf.upstream)
        text = f"Leaf step `{leaf.name}` ({type(leaf.step).__name__}) of pipeline `{leaf.pipeline.name}`."
        if summary:
            text += f"\n\n{summary}"
        return f"{text}\n\nComputed by: {chain}."

    def get_metadata(self, leaf: LeafStep) -> Mapping[str, Any]:
        """Definition metadata shown on the asset page."""
        step = leaf.step
        return {
            "distil_dagster/pipeline": leaf.pipeline.name,
            "distil_dagster/step": leaf.name,
            "distil_dagster/step_class": f"{type(step).__module__}.{type(step).__qualname__}",
            "distil_dagster/upstream_steps": ", ".join(leaf.upstream),
        }

    def get_tags(self, leaf: LeafStep) -> Mapping[str, str]:
        """The Parquet kind badge (``from_graph`` has no ``kinds=``; the tag is equivalent)."""
        return {"dagster/kind/parquet": ""}

    def get_owners(self, leaf: LeafStep) -> Sequence[str]:
        """No owners by default."""
        return []

    def get_code_version(self, leaf: LeafStep) -> str | None:
        """The signature of the leaf's ancestor sub-DAG: a change elsewhere keeps this asset fresh."""
        return leaf.pipeline.signature_of(leaf.upstream)
