"""Pipelines: authoring, graph, validation, routing, signature and YAML."""

from distil_dagster.pipeline.base import Pipeline
from distil_dagster.pipeline.routing import RoutingBatchFunction, routing_batch_function, sample_n_steps

__all__ = ["Pipeline", "RoutingBatchFunction", "routing_batch_function", "sample_n_steps"]
