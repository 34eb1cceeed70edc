"""The ``distil-dagster`` command: run or describe a pipeline, inspect and clean the cache.

distil-dagster pipeline run (--config pipeline.yaml | --script pipeline.py) [--param step.name=value ...]
    [--ignore-cache] [--executor processes|inline|ray] [--repo-id ORG/NAME [--private] [--token T]]
distil-dagster pipeline info --config pipeline.yaml
distil-dagster cache list [--cache-dir DIR] [--pipeline NAME]
distil-dagster cache clean [--pipeline NAME] [--signature SIG] [--older-than DAYS] [--all] [--yes]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distil_dagster.cache.inventory import clean_entries, list_entries
from distil_dagster.errors import DistilDagsterError
from distil_dagster.pipeline import Pipeline
from distil_dagster.pipeline.base import default_cache_dir

__all__ = ["main"]


def _parse_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    params: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        step, dot, name = key.partition(".")
        if not sep or not dot or not step or not name:
            raise DistilDagsterError(f"--param {item!r}: expected step.parameter=value.")
        try:
            value = json.loads(raw)  # numbers, true/false/null, lists, objects, "quoted strings"
        except ValueError:
            value = raw  # anything else is the string as typed
        target = params.setdefault(step, {})
        *parents, leaf = name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return params


def _run(args: argparse.Namespace) -> int:
    if (args.config is None) == (args.script is None):
        raise DistilDagsterError("pipeline run: give either --config or --script.")
    parameters = _parse_params(args.param)
    with tempfile.TemporaryDirectory(prefix="distil-dagster-script-") as download_dir:
        pipeline = Pipeline.from_yaml(args.config) if args.config else _script_pipeline(args, Path(download_dir))
        if args.cache_dir:
            pipeline.cache_dir = Path(args.cache_dir)
        distiset = pipeline.run(
            parameters=parameters, use_cache=not args.no_cache, executor=args.executor, ray_address=args.ray_address
        )
    print(distiset)
    if args.repo_id:
        distiset.push_to_hub(args.repo_id, private=args.private, token=args.token, commit_message=args.commit_message)
        print(f"Pushed to the Hub dataset {args.repo_id}.")
    return 0


def _script_pipeline(args: argparse.Namespace, download_dir: Path) -> Pipeline:
    from distil_dagster.pipeline.remote import is_url
    from distil_dagster.pipeline.script import load_script

    if is_url(args.script) and not args.yes and not _confirmed(f"Run the Python script at {args.script}?"):
        raise DistilDagsterError(
            f"--script {args.script}: running a script from a URL runs its code here; confirm it on a "
            "terminal or pass --yes."
        )
    return load_script(args.script, args.pipeline_variable_name, download_dir)


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


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


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _cache_root(args: argparse.Namespace) -> Path:
    return Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()


def _cache_list(args: argparse.Namespace) -> int:
    root = _cache_root(args)
    entries = list_entries(root, args.pipeline)
    if not entries:
        print(f"No cached pipelines in {root}.")
        return 0
    print(f"{'pipeline':<28} {'signature':<12} {'status':<11} {'rows':>9} {'batches':>8} {'size':>9}  last run")
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_run))
        print(
            f"{e.pipeline:<28} {e.signature[:12]:<12} {e.status:<11} {e.leaf_rows:>9} {e.batches:>8} "
            f"{_human(e.size_bytes):>9}  {when}"
        )
    return 0


def _cache_clean(args: argparse.Namespace) -> int:
    root = _cache_root(args)
    if not (args.pipeline or args.signature or args.older_than is not None or args.all):
        raise DistilDagsterError(
            "cache clean: choose what to remove with --pipeline, --signature, --older-than or --all."
        )
    entries = [
        e
        for e in list_entries(root, args.pipeline, args.signature)
        if args.older_than is None or e.age_days >= args.older_than
    ]
    removed, busy = clean_entries(entries, dry_run=not args.yes)
    verb = "Removed" if args.yes else "Would remove"
    for e in removed:
        print(f"{verb} {e.path} ({e.status}, {_human(e.size_bytes)})")
    for e in busy:
        print(f"Skipped {e.path}: a run is using it")
    total = sum(e.size_bytes for e in removed)
    print(f"{verb} {len(removed)} folder(s), {_human(total)}." + ("" if args.yes else " Pass --yes to remove them."))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distil-dagster", description="distil_dagster pipelines from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pipeline = commands.add_parser("pipeline", help="run or describe a pipeline.yaml")
    actions = pipeline.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="run a pipeline (resuming from its cache)")
    run.add_argument("--config", help="path or http(s) URL of a pipeline.yaml")
    run.add_argument("--script", help="path or http(s) URL of a Python script that builds the pipeline")
    run.add_argument(
        "--pipeline-variable-name",
        default="pipeline",
        help="with --script: the script's variable holding the pipeline (default: pipeline)",
    )
    run.add_argument("--yes", action="store_true", help="with a --script URL: run it without asking")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        help="runtime parameter step.name=value or step.name.key=value (value: JSON, else a string)",
    )
    run.add_argument("--cache-dir", help="cache folder (default: the environment's)")
    run.add_argument("--no-cache", "--ignore-cache", action="store_true", help="start clean instead of resuming")
    run.add_argument("--executor", choices=["processes", "inline", "ray"], default="processes")
    run.add_argument("--ray-address", help="with --executor ray: the cluster's address (default: a local Ray)")
    run.add_argument("--repo-id", help="push the Distiset to this Hugging Face Hub dataset afterwards")
    run.add_argument("--commit-message", help="with --repo-id: the Hub commit message")
    run.add_argument("--private", action="store_true", help="with --repo-id: create the dataset private")
    run.add_argument("--token", help="with --repo-id: a Hub token (default: HF_TOKEN or the saved login)")
    run.set_defaults(handler=_run)
    info = actions.add_parser("info", help="describe a pipeline")
    info.add_argument("--config", required=True, help="path or http(s) URL of a pipeline.yaml")
    info.set_defaults(handler=_info)
    cache = commands.add_parser("cache", help="inspect or clean the cache")
    cache_actions = cache.add_subparsers(dest="action", required=True)
    listing = cache_actions.add_parser("list", help="cached pipelines: signature, status, rows, size, last run")
    listing.add_argument("--cache-dir", help="cache root (default: the environment's)")
    listing.add_argument("--pipeline", help="only this pipeline")
    listing.set_defaults(handler=_cache_list)
    clean = cache_actions.add_parser("clean", help="remove cached runs (a dry run unless --yes)")
    clean.add_argument("--cache-dir", help="cache root (default: the environment's)")
    clean.add_argument("--pipeline", help="only this pipeline")
    clean.add_argument("--signature", help="only this signature (a prefix is enough)")
    clean.add_argument("--older-than", type=float, metavar="DAYS", help="only runs last touched this many days ago")
    clean.add_argument("--all", action="store_true", help="every cached run")
    clean.add_argument("--yes", action="store_true", help="really remove (default: only print what would go)")
    clean.set_defaults(handler=_cache_clean)
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
