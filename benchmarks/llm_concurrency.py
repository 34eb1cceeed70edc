"""LLM request concurrency: distil_dagster's ``OpenAILLM`` vs distilabel 1.5.3's, against a local server.

    .venv/bin/python benchmarks/llm_concurrency.py [--rows 200] [--latency 0.1] [--concurrency 10,50]
                                                   [--repeat 3] [--distilabel-python PATH]

The server is the test fixture (``tests/models/openai_server.py``): a real OpenAI-compatible HTTP
server on 127.0.0.1 answering every request after ``--latency`` seconds, in a thread of this
process. Each measured run is a fresh client subprocess; the server times its busy window (first
request in to last answer out) and the most requests in flight. With concurrency C the bound is
C / latency requests per second, i.e. ``rows * latency / C`` seconds.

Equal settings at concurrency C: distilabel's ``OpenAILLM`` has no concurrency limit of its own; it
sends a whole batch at once, so its task runs with ``input_batch_size=C``. distil_dagster's task runs
with ``input_batch_size=C`` and ``max_concurrency=C`` ("llm" rows call ``generate`` directly, the
distilabel side in batches of C, as its task does; "pipeline" rows run
``LoadDataFromDicts >> TextGeneration``). distil_dagster also runs once with all rows in one batch
("one batch"), where its semaphore keeps C requests in flight instead of waiting for each batch.

distilabel runs in ``benchmarks/.venv-distilabel`` (create it with
``python3 -m venv benchmarks/.venv-distilabel && benchmarks/.venv-distilabel/bin/pip install
distilabel==1.5.3 openai``) or the interpreter given with ``--distilabel-python``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DISTILABEL_VENV_PYTHON = HERE / ".venv-distilabel" / "bin" / "python"
SETUPS = [  # (label, framework, level, one batch)
    ("distilabel 1.5.3 llm", "distilabel", "llm", False),
    ("distil_dagster llm", "distil_dagster", "llm", False),
    ("distilabel 1.5.3 pipeline", "distilabel", "pipeline", False),
    ("distil_dagster pipeline", "distil_dagster", "pipeline", False),
    ("distil_dagster pipeline, one batch", "distil_dagster", "pipeline", True),
    ("raw asyncio client (server ceiling)", "raw", "llm", True),
]


async def raw_client(base_url: str, rows: int, concurrency: int) -> None:
    """The least a client can do: ``concurrency`` keep-alive connections on asyncio streams, each
    sending its next request as soon as the answer is in. What it reaches is the ceiling the local
    server itself allows (its own per-request time and scheduling), whatever the client."""
    import asyncio

    host_port = base_url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    todo = iter(range(rows))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for i in todo:
            body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": f"question {i}"}]}).encode()
            head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host_port}\r\ncontent-type: application/json\r\n"
            writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
            answer = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in answer.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            assert b" 200 " in answer.split(b"\r\n")[0], answer[:80]
            await reader.readexactly(length)
        writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))


# -- client side (runs in the framework's own interpreter; stdlib imports only at the top) -----
def client(framework: str, level: str, base_url: str, rows: int, concurrency: int, one_batch: bool) -> dict:
    """Generate for ``rows`` instructions; return the seconds (and, for "llm", the CPU seconds of
    this process) of the measured call."""
    data = [{"instruction": f"question {i}"} for i in range(rows)]
    batch = rows if one_batch else concurrency
    if framework == "raw":
        import asyncio

        start, cpu = time.perf_counter(), time.process_time()
        asyncio.run(raw_client(base_url, rows, concurrency))
        return {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}
    if framework == "distilabel":
        from distilabel.models.llms import OpenAILLM as DistilabelLLM
        from distilabel.pipeline import Pipeline as DistilabelPipeline
        from distilabel.steps import LoadDataFromDicts as DistilabelLoad
        from distilabel.steps.tasks import TextGeneration as DistilabelTextGeneration

        llm: Any = DistilabelLLM(model="bench", base_url=base_url, api_key="bench-key")
        pipeline_cls, load_cls, task_cls = DistilabelPipeline, DistilabelLoad, DistilabelTextGeneration
    else:
        from distil_dagster.models import OpenAILLM
        from distil_dagster.pipeline import Pipeline
        from distil_dagster.steps import LoadDataFromDicts
        from distil_dagster.steps.tasks import TextGeneration

        llm = OpenAILLM(model="bench", base_url=base_url, api_key="bench-key", max_concurrency=concurrency)
        pipeline_cls, load_cls, task_cls = Pipeline, LoadDataFromDicts, TextGeneration
    if level == "llm":
        llm.load()
        inputs = [[{"role": "user", "content": row["instruction"]}] for row in data]
        generate = llm.generate if framework == "distil_dagster" else llm.generate_outputs
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, rows, batch):
            assert all(o["generations"][0] for o in generate(inputs[i : i + batch]))
        result = {"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}
        llm.unload()
        return result
    with tempfile.TemporaryDirectory() as cache:
        with pipeline_cls(name="llm-concurrency", cache_dir=cache) as pipeline:
            load_cls(data=data, batch_size=batch) >> task_cls(llm=llm, input_batch_size=batch)
        start = time.perf_counter()
        distiset = pipeline.run(use_cache=False)
        seconds = time.perf_counter() - start
        assert len(distiset["default"]["train"]) == rows
    return {"seconds": seconds, "cpu": None}


# -- driver ------------------------------------------------------------------------------------
def distilabel_python(explicit: str | None) -> str | None:
    """The interpreter with distilabel 1.5.3 and openai, or None (with the way to create it)."""
    python = Path(explicit) if explicit else DISTILABEL_VENV_PYTHON
    check = [str(python), "-c", "import distilabel, openai; print(distilabel.__version__)"]
    got = subprocess.run(check, capture_output=True, text=True) if python.exists() else None
    if got is not None and got.returncode == 0 and got.stdout.strip() == "1.5.3":
        return str(python)
    pip = python.parent / "pip"
    fix = (
        f"{pip} install openai"
        if python.exists()
        else (f"python3 -m venv {python.parent.parent} && {pip} install distilabel==1.5.3 openai")
    )
    print(f"distilabel 1.5.3 with openai not found at {python}; skipping it. Fix: {fix}", file=sys.stderr)
    return None


def measure(python: str, setup: tuple[str, str, str, bool], server: Any, args: argparse.Namespace, c: int) -> dict:
    _, framework, level, one_batch = setup
    server.reset_counters()
    cmd = [python, str(Path(__file__).resolve()), "--client", framework, "--level", level]
    cmd += ["--base-url", server.base_url, "--rows", str(args.rows), "--concurrency", str(c)]
    cmd += ["--one-batch"] if one_batch else []
    # The repository on PYTHONPATH: with setuptools' editable finder alone, the engine takes every
    # distil_dagster module for one loaded by path and its workers fail to import the task.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    stats = server.stats()
    return {**result, "window": stats["window"], "max_in_flight": stats["max_in_flight"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", default="10,50", help="comma-separated concurrency levels")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--distilabel-python")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--level", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--one-batch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        result = client(args.client, args.level, args.base_url, args.rows, int(args.concurrency), args.one_batch)
        print(json.dumps(result))
        return

    sys.path.insert(0, str(ROOT))
    from tests.models.openai_server import FakeOpenAIServer

    pythons = {
        "distil_dagster": sys.executable,
        "raw": sys.executable,
        "distilabel": distilabel_python(args.distilabel_python),
    }
    levels = [int(c) for c in args.concurrency.split(",")]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{args.rows} rows, {args.latency * 1000:.0f} ms latency, median of {args.repeat} run(s); {os.cpu_count()} CPUs, load {load}"
    )
    print("busy s: the server's busy window; call s: the measured call; CPU: client CPU per row (llm rows)\n")
    header = (
        f"{'client':<36} {'C':>4} {'bound s':>8} {'busy s':>8} {'req/s':>8} {'% bound':>8} {'in flight':>10}"
        f" {'call s':>8} {'CPU ms/row':>11}"
    )
    print(header + "\n" + "-" * len(header))
    with FakeOpenAIServer(latency=args.latency) as server:
        for c in levels:
            bound = args.rows * args.latency / c
            for setup in SETUPS:
                python = pythons[setup[1]]
                if python is None:
                    continue
                runs = [measure(python, setup, server, args, c) for _ in range(args.repeat)]
                busy = statistics.median(r["window"] for r in runs)
                call = statistics.median(r["seconds"] for r in runs)
                peak = max(r["max_in_flight"] for r in runs)
                cpus = [r["cpu"] for r in runs if r["cpu"] is not None]
                cpu = f"{1000 * statistics.median(cpus) / args.rows:.2f}" if cpus else "-"
                print(
                    f"{setup[0]:<36} {c:>4} {bound:>8.3f} {busy:>8.3f} {args.rows / busy:>8.1f} "
                    f"{100 * bound / busy:>7.1f}% {peak:>10} {call:>8.3f} {cpu:>11}",
                    flush=True,
                )
            print(f"{'theoretical bound':<36} {c:>4} {bound:>8.3f} {bound:>8.3f} {c / args.latency:>8.1f} {100:>7.1f}%")


if __name__ == "__main__":
    main()
