"""One or more runs of a fault scenario's pipeline, in a child process of the reliability suite.

    python tests/reliability/children/fault_target.py --spec JSON --cache-dir DIR --executor inline
        [--runs N] [--heal-before K] [--step-timeout S] [--lock-timeout S] [--no-cache]
        [--recompute-on-corrupt] [--kill-after S]

Each run prints ``RESULT {json}`` on stdout (``status`` ok or the error class, its message, the
rows per leaf). A ``DistilDagsterError`` is printed on stderr as ``error: <class>: <message>``;
the exit code is that of the last run: 0, 130 (``RunInterrupted``) or 3 (another
``DistilDagsterError``). Anything else escapes as a traceback (exit code 1): an unclear error.
``--heal-before K`` creates the spec's marker before run K (1-based); ``--recompute-on-corrupt``
follows a ``CacheCorruptedError`` with a ``use_cache=False`` run, as its message advises;
``--kill-after`` SIGKILLs the whole process group that many seconds after the first run starts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from distil_dagster.engine.config import EngineConfig
from distil_dagster.errors import CacheCorruptedError, DistilDagsterError, RunInterrupted
from tests.reliability.children.pipelines import Spec, build


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--cache-dir", required=True, type=Path)
    parser.add_argument("--executor", default="inline")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--heal-before", type=int, default=0)
    parser.add_argument("--step-timeout", type=float, default=None)
    parser.add_argument("--lock-timeout", type=float, default=60.0)
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--recompute-on-corrupt", action="store_true")
    parser.add_argument("--kill-after", type=float, default=0.0)
    return parser.parse_args()


def _run(spec: Spec, args: argparse.Namespace, config: EngineConfig, use_cache: bool) -> tuple[int, dict]:
    try:
        distiset = build(spec, args.cache_dir).run(executor=args.executor, config=config, use_cache=use_cache)
    except DistilDagsterError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        code = 130 if isinstance(exc, RunInterrupted) else 3
        return code, {"status": type(exc).__name__, "message": str(exc)}
    rows = {name: dataset["train"].num_rows for name, dataset in distiset.items()}
    return 0, {"status": "ok", "rows": rows}


def main() -> int:
    args = _parse()
    spec = Spec.from_json(args.spec)
    config = EngineConfig(step_timeout=args.step_timeout, lock_timeout=args.lock_timeout, progress_interval=0.1)
    if args.kill_after > 0:
        timer = threading.Timer(args.kill_after, lambda: os.killpg(os.getpgid(0), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    code = 0
    for number in range(1, args.runs + 1):
        if number == args.heal_before and spec.marker:
            Path(spec.marker).touch()
        code, result = _run(spec, args, config, use_cache=not args.no_cache)
        print("RESULT " + json.dumps({"run": number, **result}), flush=True)
        if result["status"] == CacheCorruptedError.__name__ and args.recompute_on_corrupt:
            code, result = _run(spec, args, config, use_cache=False)
            print("RESULT " + json.dumps({"run": number, "recompute": True, **result}), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
