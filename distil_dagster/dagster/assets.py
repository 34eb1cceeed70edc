"""``build_pipeline_assets``: a pipeline as a graph-backed multi-asset, one asset per leaf step.

One op per step, op dependencies = DAG edges (``Nothing`` inputs: rows never travel between
ops, the engine moves them), one asset per leaf. Ops do not compute rows: the first op of a run
starts the engine on the selected leaves (see ``engine_run.py``); every op then waits for its
step, forwarding engine logs and progress (``AssetObservation`` for leaves), and outputs
``None`` (inner steps) or a :class:`LeafOutput` (leaves, stored by the IO manager) with the
step's counters as metadata. Selecting one leaf runs only its ancestors' ops.
"""

# No `from __future__ import annotations` here: Dagster inspects the `context` annotation of
# compute functions at definition time and rejects it as a string.
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    DependencyDefinition,
    GraphDefinition,
    In,
    Nothing,
    OpDefinition,
    OpExecutionContext,
    Out,
    Output,
    OutputMapping,
)

from distil_dagster.dagster.engine_run import EngineRun, EngineRunError
from distil_dagster.dagster.io_manager import OUT_METADATA_KEYS
from distil_dagster.dagster.leaf_data import LeafOutput
from distil_dagster.dagster.names import identifier, step_identifiers
from distil_dagster.dagster.progress import StepProgress
from distil_dagster.dagster.resource import DistilDagsterResource, forward_logs
from distil_dagster.dagster.run_config import OP_CONFIG_SCHEMA, build_run_config
from distil_dagster.dagster.translator import DistilDagsterTranslator, LeafStep
from distil_dagster.pipeline.base import Pipeline

__all__ = ["DEFAULT_IO_MANAGER_KEY", "DEFAULT_RESOURCE_KEY", "build_pipeline_assets"]

DEFAULT_RESOURCE_KEY = "distil_dagster"
DEFAULT_IO_MANAGER_KEY = "distil_dagster_io_manager"
_OUTPUT = "result"


def _step_metadata(progress: StepProgress) -> dict[str, Any]:
    return {
        "rows": progress.total_rows,
        "batches": progress.total_batches,
        "failed_rows": progress.failed_rows,
        "computed_rows": progress.rows,
        "reused_batches": progress.reused_batches,
        "reused_rows": progress.reused_rows,
        "seconds": round(progress.seconds, 3),
    }


def _progress_line(report: Mapping[str, StepProgress]) -> str:
    parts = []
    for name, p in report.items():
        done = ", finished" if p.finished else ""
        parts.append(f"{name}: {p.total_batches} batch(es), {p.total_rows} row(s) ({p.reused_rows} reused){done}")
    return "Progress: " + "; ".join(parts) + "."


class _StepOp:
    """The compute function of one step's op."""

    def __init__(self, pipeline: Pipeline, step: str, leaf_keys: Mapping[AssetKey, str], resource_key: str) -> None:
        self.pipeline = pipeline
        self.step = step
        self.leaf_keys = leaf_keys
        self.own_key = next((k for k, s in leaf_keys.items() if s == step), None)
        self.resource_key = resource_key

    def __call__(self, context: OpExecutionContext, inputs: Mapping[str, Any]) -> Iterator[Any]:
        resource: DistilDagsterResource = getattr(context.resources, self.resource_key)
        run = resource.engine_run_for(self.pipeline)
        selected = {k: leaf for k, leaf in self.leaf_keys.items() if k in context.selected_asset_keys}
        # An op selection (not an asset selection) selects no leaf: run every leaf then.
        leaves = sorted(selected.values()) or sorted(self.leaf_keys.values())
        run.start(self.pipeline, leaves, context.op_config["parameters"])
        try:
            yield from self._wait(context, run, {leaf: key for key, leaf in selected.items()})
        except BaseException as exc:
            # A failure here or a terminated run (DagsterExecutionInterruptedError): stop gracefully.
            run.stop()
            if not isinstance(exc, EngineRunError):
                context.log.warning(
                    f"Op of step '{self.step}' interrupted ({type(exc).__name__}); the engine finishes the batches "
                    "in flight and stops. Committed batches are kept: the next materialization resumes from them."
                )
            raise
        metadata = _step_metadata(run.progress(self.step))
        if self.own_key is None:
            yield Output(None, _OUTPUT, metadata=metadata)
            return
        assert run.layout is not None  # set by start()
        value = LeafOutput(self.step, run.layout.root, tuple(run.records(self.step)), self.pipeline.enable_metadata)
        yield Output(value, _OUTPUT, metadata=metadata)

    def _wait(
        self, context: OpExecutionContext, run: EngineRun, observed: Mapping[str, AssetKey]
    ) -> Iterator[AssetObservation]:
        """Forward logs and progress (a log line, observations of the selected leaves) until the step finished."""
        try:
            for update in run.updates(self.step):
                forward_logs(context.log, update.logs)
                if not update.report:
                    continue
                for name, progress in update.report.items():  # stored before the line that tells of them
                    if name in observed:
                        yield AssetObservation(asset_key=observed[name], metadata=_step_metadata(progress))
                context.log.info(_progress_line(update.report))
        except EngineRunError:
            forward_logs(context.log, run.take_logs())
            raise


def _op(pipeline: Pipeline, step: str, op_name: str, preds: list[str], compute: _StepOp, io_key: str) -> OpDefinition:
    is_leaf = compute.own_key is not None
    metadata: dict[str, Any] = {}
    if is_leaf:
        root = pipeline.cache_dir / pipeline.name / pipeline.signature
        metadata = {
            OUT_METADATA_KEYS["step"]: step,
            OUT_METADATA_KEYS["root"]: str(root),
            OUT_METADATA_KEYS["enable_metadata"]: pipeline.enable_metadata,
        }
    out = Out(
        dagster_type=LeafOutput if is_leaf else Nothing,
        io_manager_key=io_key if is_leaf else "io_manager",
        metadata=metadata,
    )
    return OpDefinition(
        compute_fn=compute,
        name=op_name,
        ins={f"after_{p}": In(dagster_type=Nothing) for p in preds},
        outs={_OUTPUT: out},
        config_schema=OP_CONFIG_SCHEMA,
        # "io_manager" too: works around Dagster bug #32862 (subset runs of graph-backed assets
        # whose ops use a non-default IO manager fail with `requires io_manager_key "io_manager"`).
        required_resource_keys={compute.resource_key, io_key, "io_manager"},
        description=f"Waits for step '{step}' of pipeline '{pipeline.name}' in the distil_dagster engine.",
        tags={"distil_dagster/step": step},
    )


def build_pipeline_assets(
    pipeline: Pipeline,
    *,
    translator: DistilDagsterTranslator | None = None,
    name: str | None = None,
    resource_key: str = DEFAULT_RESOURCE_KEY,
    io_manager_key: str = DEFAULT_IO_MANAGER_KEY,
) -> AssetsDefinition:
    """The leaf steps of ``pipeline`` as one subsettable graph-backed multi-asset.

    Args:
        pipeline: a valid pipeline (validated here, with its runtime parameters as defined).
        translator: asset keys, groups, descriptions, metadata, tags, owners, code versions.
        name: the graph's name (default: the pipeline name as an identifier); its run config is
            ``{"ops": {name: {"config": {<step>: {<runtime parameter>: value}}}}}``.
        resource_key: key of the :class:`DistilDagsterResource`.
        io_manager_key: key of the :class:`DistilDagsterIOManager`.
    """
    pipeline.validate()
    translator = translator or DistilDagsterTranslator()
    graph_name = name or identifier(pipeline.name)
    # Op names carry the graph's name: two pipelines in one Definitions may share step names.
    ids = {step: f"{graph_name}__{op}" for step, op in step_identifiers(pipeline).items()}
    dag = pipeline.dag
    leaves = {leaf: LeafStep(pipeline, leaf) for leaf in dag.leaves}
    leaf_keys = {translator.get_asset_key(leaf): name for name, leaf in leaves.items()}
    if len(leaf_keys) != len(leaves):
        raise ValueError(f"The translator gives two leaves of pipeline '{pipeline.name}' the same asset key.")
    ops = [
        _op(
            pipeline,
            step,
            ids[step],
            [ids[p] for p in dag.predecessors(step)],
            _StepOp(pipeline, step, leaf_keys, resource_key),
            io_manager_key,
        )
        for step in dag.topological_order()
    ]
    dependencies = {
        ids[step]: {f"after_{ids[p]}": DependencyDefinition(ids[p], _OUTPUT) for p in dag.predecessors(step)}
        for step in dag.topological_order()
    }
    outputs = {leaf: f"{ids[leaf]}_out" for leaf in leaves}
    graph = GraphDefinition(
        name=graph_name,
        description=pipeline.description,
        node_defs=ops,
        dependencies=dependencies,
        output_mappings=[OutputMapping(outputs[leaf], ids[leaf], _OUTPUT) for leaf in leaves],
        config=build_run_config(pipeline, op_prefix=f"{graph_name}__").mapping,
    )
    by_output = {outputs[name]: leaf for name, leaf in leaves.items()}
    return AssetsDefinition.from_graph(
        graph,
        keys_by_output_name={out: translator.get_asset_key(leaf) for out, leaf in by_output.items()},
        group_names_by_output_name={out: translator.get_group_name(leaf) for out, leaf in by_output.items()},
        descriptions_by_output_name={
            out: d for out, leaf in by_output.items() if (d := translator.get_description(leaf)) is not None
        },
        metadata_by_output_name={out: translator.get_metadata(leaf) for out, leaf in by_output.items()},
        tags_by_output_name={out: translator.get_tags(leaf) for out, leaf in by_output.items()},
        owners_by_output_name={out: translator.get_owners(leaf) for out, leaf in by_output.items()},
        code_versions_by_output_name={out: translator.get_code_version(leaf) for out, leaf in by_output.items()},
        can_subset=True,
    )
