"""The ``distil-dagster`` command: run or describe a pipeline from its ``pipeline.yaml``.

distil-dagster pipeline run --config pipeline.yaml [--param step.name=value ...] [--no-cache]
distil-dagster pipeline info --config pipeline.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from distil_dagster.errors import DistilDagsterError
from distil_dagster.pipeline import Pipeline

__all__ = ["main"]


def _parse_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        step, dot, name = key.partition(".")
        if not sep or not dot or not step or not name:
            raise DistilDagsterError(f"--param {item!r}: expected step.parameter=value (value in YAML syntax).")
        value = yaml.safe_load(raw)
        target = params.setdefault(step, {})
        *parents, leaf = name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return params


def _run(args: argparse.Namespace) -> int:
    pipeline = Pipeline.from_yaml(args.config)
    if args.cache_dir:
        pipeline.cache_dir = Path(args.cache_dir)
    distiset = pipeline.run(parameters=_parse_params(args.param), use_cache=not args.no_cache)
    print(distiset)
    return 0


def _info(args: argparse.Namespace) -> int:
    pipeline = Pipeline.from_yaml(args.config)
    info = {
        "name": pipeline.name,
        "signature": pipeline.signature,
        "steps": {n: type(pipeline.dag.step(n)).__name__ for n in pipeline.dag.names},
        "connections": {n: pipeline.dag.successors(n) for n in pipeline.dag.names},
        "leaves": pipeline.dag.leaves,
        "runtime_parameters": pipeline.get_runtime_parameters_info(),
    }
    print(json.dumps(info, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distil-dagster", description="distil_dagster pipelines from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pipeline = commands.add_parser("pipeline", help="run or describe a pipeline.yaml")
    actions = pipeline.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="run a pipeline (resuming from its cache)")
    run.add_argument("--config", required=True, help="path to pipeline.yaml")
    run.add_argument("--param", action="append", default=[], help="runtime parameter step.name=value")
    run.add_argument("--cache-dir", help="cache folder (default: the environment's)")
    run.add_argument("--no-cache", action="store_true", help="start clean instead of resuming")
    run.set_defaults(handler=_run)
    info = actions.add_parser("info", help="describe a pipeline")
    info.add_argument("--config", required=True, help="path to pipeline.yaml")
    info.set_defaults(handler=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``distil-dagster`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except DistilDagsterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
