"""``Pipeline``: the authoring object (context manager, steps, ``>>``, run, dry run, YAML).

The pipeline holds the DAG and hands itself to the engine in ``run()``; it does not execute.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from distil_dagster.errors import MissingRequirementsError, PipelineValidationError
from distil_dagster.mixins.requirements import missing_requirement, parse_requirements
from distil_dagster.pipeline.context import reset_active_pipeline, set_active_pipeline
from distil_dagster.pipeline.dag import DAG, unsafe_name_reason
from distil_dagster.pipeline.load_groups import LoadGroups
from distil_dagster.pipeline.routing import RoutingBatchFunction
from distil_dagster.pipeline.signature import dag_signature

if TYPE_CHECKING:
    from distil_dagster.distiset import Distiset
    from distil_dagster.engine.config import EngineConfig
    from distil_dagster.steps.base import _Step

__all__ = ["Pipeline", "RayPipeline", "default_cache_dir"]

Executor = Literal["inline", "processes", "ray"]


def default_cache_dir() -> Path:
    """``DISTIL_DAGSTER_CACHE_DIR``, else ``DISTILABEL_CACHE_DIR``, else ``~/.cache/distil_dagster/pipelines``."""
    for var in ("DISTIL_DAGSTER_CACHE_DIR", "DISTILABEL_CACHE_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    return Path.home() / ".cache" / "distil_dagster" / "pipelines"


class Pipeline:
    """A distilabel-style pipeline: create steps inside ``with Pipeline(...) as p:`` and connect them with ``>>``.

    Args:
        name: the pipeline's name (a folder name in the cache).
        description: free text, kept in ``pipeline.yaml``.
        cache_dir: where the cache lives (see :func:`default_cache_dir`).
        enable_metadata: keep the ``distilabel_metadata`` column in the Distiset.
        requirements: packages the pipeline needs (PEP 508 strings); with the steps' own
            (``@requirements``), checked before any work of a run.
        seed: seeds routing decisions, so every run routes the same way.
    """

    def __init__(
        self,
        name: str | None = None,
        description: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        enable_metadata: bool = False,
        requirements: list[str] | None = None,
        seed: int = 0,
    ) -> None:
        self._name = name
        self.description = description
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.enable_metadata = enable_metadata
        self.requirements = list(requirements or [])
        self.seed = seed
        self.dag = DAG()
        self._name_counts: dict[str, int] = {}
        self._tokens: list[object] = []

    @property
    def requirements(self) -> list[str]:
        """The packages the pipeline needs: its own and its steps' (distilabel's), sorted."""
        steps = (r for name in self.dag.names for r in self.dag.step(name).requirements)
        return sorted({*self._requirements, *steps})

    @requirements.setter
    def requirements(self, value: list[str]) -> None:
        try:
            self._requirements = parse_requirements(value, f"Pipeline {self._name!r}" if self._name else "Pipeline")
        except ValueError as exc:
            raise PipelineValidationError([str(exc)]) from None

    def requirements_to_install(self) -> list[str]:
        """The requirements this environment does not meet (distilabel's)."""
        return [r for r in self.requirements if missing_requirement(r) is not None]

    def check_requirements(self) -> None:
        """Raise :class:`MissingRequirementsError` naming each unmet requirement and who declared it."""
        owners = [(f"Pipeline '{self.name}'", self._requirements)] + [
            (f"Step '{name}'", self.dag.step(name).requirements) for name in self.dag.names
        ]
        problems, missing = [], []
        for owner, requirements in owners:
            for requirement in requirements:
                why = missing_requirement(requirement)
                if why is not None:
                    problems.append(f"{owner} requires {requirement!r}: {why}.")
                    missing.append(requirement)
        if problems:
            raise MissingRequirementsError(problems, sorted(set(missing)))

    @property
    def name(self) -> str:
        """The pipeline's name; unnamed pipelines are ``pipeline_<step names>`` as in distilabel."""
        return self._name or "_".join(["pipeline", *self.dag.names])

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    def __enter__(self) -> Pipeline:
        self._tokens.append(set_active_pipeline(self))
        return self

    def __exit__(self, *exc: object) -> None:
        reset_active_pipeline(self._tokens.pop())

    def __repr__(self) -> str:
        return f"Pipeline(name={self.name!r}, steps={self.dag.names})"

    # -- building (called by steps) -------------------------------------------------------------
    def next_step_index(self, prefix: str) -> int:
        """The index naming the next unnamed step of a class: ``<class_snake>_<index>``, the first
        not taken by a step already in the pipeline (as distilabel), named by the user or not."""
        index = self._name_counts.get(prefix, 0)
        while f"{prefix}_{index}" in self.dag:
            index += 1
        self._name_counts[prefix] = index + 1
        return index

    def add_step(self, step: _Step) -> None:
        """Register a step (done by the step itself when created in the ``with`` block)."""
        self.dag.add_step(step)

    def add_edge(self, source: str, target: str) -> None:
        """Connect two steps by name."""
        self.dag.add_edge(source, target)

    def add_routing_batch_function(self, upstream: str, function: RoutingBatchFunction, targets: list[str]) -> None:
        """Route the batches of ``upstream`` to ``targets`` through ``function``."""
        self.dag.add_routing(upstream, function, targets)

    # -- inspection -----------------------------------------------------------------------------
    def validate(self, parameters: dict[str, dict[str, Any]] | None = None) -> None:
        """Raise :class:`PipelineValidationError` listing every problem, or return."""
        problems = []
        reason = unsafe_name_reason(self.name)
        if reason:
            problems.append(f"Pipeline name {self.name!r} is not a safe folder name: {reason}.")
        problems.extend(self.dag.validate(parameters))
        if problems:
            raise PipelineValidationError(problems)

    @property
    def signature(self) -> str:
        """SHA-1 of everything that defines the output (see ``pipeline.signature``)."""
        return dag_signature(self.dag, self.seed)

    def signature_of(self, steps: list[str]) -> str:
        """Signature of the sub-DAG made of ``steps``."""
        return dag_signature(self.dag, self.seed, steps)

    def get_runtime_parameters_info(self) -> dict[str, list[dict[str, Any]]]:
        """Runtime parameters of every step, by step name."""
        return {name: self.dag.step(name).get_runtime_parameters_info() for name in self.dag.names}

    # -- running --------------------------------------------------------------------------------
    def run(
        self,
        parameters: dict[str, dict[str, Any]] | None = None,
        load_groups: LoadGroups | None = None,
        use_cache: bool = True,
        storage_parameters: dict[str, Any] | None = None,
        use_fs_to_pass_data: bool = False,
        dataset: Any = None,
        dataset_batch_size: int = 50,
        logging_handlers: Sequence[logging.Handler] | None = None,
        *,
        executor: Executor = "processes",
        config: EngineConfig | None = None,
        ray_address: str | None = None,
    ) -> Distiset:
        """Run the pipeline (resuming from the cache when possible) and return its Distiset.

        The arguments before ``executor`` are distilabel 1.5's, in its order.

        Args:
            parameters: runtime parameters, ``{step_name: {parameter: value}}``.
            use_cache: resume from (or return) what the cache holds; ``False`` starts clean.
            executor: ``"processes"`` runs every step replica in its own process (steps must be
                importable: define them in a module, or in a script under ``if __name__ == "__main__":``);
                ``"inline"`` runs every step in this process, one after another (debugging, notebooks);
                ``"ray"`` runs every step replica as a Ray actor (``pip install 'distil_dagster[ray]'``).
            config: engine settings (retries, durability, lock timeout).
            ray_address: with ``executor="ray"``, the cluster to connect to when Ray is not
                initialized yet (``"auto"``, ``"ray://host:10001"``; default: ``RAY_ADDRESS``, a
                ``ray start`` cluster on this machine, else a new local instance); sets
                ``EngineConfig.ray_address``.
            dataset: rows for a pipeline without a generator (a list of dicts, a ``datasets.Dataset``
                or a ``pandas.DataFrame``): for this run, a generator over them (``make_generator_step``)
                feeds every root step. The pipeline itself is not changed.
            dataset_batch_size: the rows per batch of that generator.
            load_groups: steps to load together, stage after stage, each stage's steps unloaded before
                the next loads (lists of steps or step names, or ``"sequential_step_execution"``);
                steps in no group form stages between the groups (``pipeline/load_groups.py``).
            logging_handlers: handlers that also get the run's log (worker processes included).
            use_fs_to_pass_data: accepted for distilabel compatibility: batches always travel
                through files in the cache folder.
            storage_parameters: not supported (distilabel's fsspec storage for batches): put
                ``cache_dir`` on storage every machine reads instead.
        """
        if storage_parameters is not None:
            raise PipelineValidationError(
                [
                    "run(storage_parameters=...) is not supported: batches travel through the cache folder; "
                    "to share them between machines, put cache_dir on a filesystem every machine mounts."
                ]
            )
        if dataset is not None:
            with self._dataset_generator(dataset, dataset_batch_size):
                return self.run(
                    parameters,
                    use_cache=use_cache,
                    executor=executor,
                    config=config,
                    ray_address=ray_address,
                    load_groups=load_groups,
                    logging_handlers=logging_handlers,
                )
        if executor == "processes":  # its imports overlap the engine's, below
            from distil_dagster.engine.worker_server import prestart

            prestart(self, use_cache, config)
        from distil_dagster.engine.runner import run_pipeline

        return run_pipeline(
            self,
            parameters=parameters,
            use_cache=use_cache,
            executor=executor,
            config=config,
            ray_address=ray_address,
            load_groups=load_groups,
            logging_handlers=logging_handlers or (),
        )

    def ray(self, ray_head_node_url: str | None = None, ray_init_kwargs: dict[str, Any] | None = None) -> RayPipeline:
        """This pipeline on Ray, as distilabel's ``pipeline.ray()``: its ``run`` uses ``executor="ray"``.

        Args:
            ray_head_node_url: the cluster (``ray://host:10001``, ``auto``); default as ``run(ray_address=None)``.
            ray_init_kwargs: not supported: call ``ray.init(...)`` yourself before ``run()``; the
                engine uses an initialized Ray as it is.
        """
        if ray_init_kwargs:
            raise PipelineValidationError(
                [
                    f"Pipeline '{self.name}': ray(ray_init_kwargs=...) is not supported; call ray.init(...) with those "
                    "arguments before run(): the engine uses an initialized Ray as it is."
                ]
            )
        return RayPipeline(self, ray_head_node_url)

    @contextlib.contextmanager
    def _dataset_generator(self, dataset: Any, batch_size: int) -> Iterator[None]:
        """Put a generator over ``dataset`` before every root step for the duration of the block."""
        from distil_dagster.steps.generators.utils import make_generator_step

        generators = [name for name in self.dag.roots if self.dag.step(name).is_generator]
        if generators:
            raise PipelineValidationError(
                [
                    f"run(dataset=...) puts a generator over the dataset before the root steps, but root step "
                    f"'{generators[0]}' is a generator already: pass the rows either way, not both."
                ]
            )
        roots, counts = self.dag.roots, dict(self._name_counts)
        loader = make_generator_step(dataset, pipeline=self, batch_size=batch_size)
        assert loader.name is not None
        for root in roots:
            self.add_edge(loader.name, root)
        try:
            yield
        finally:
            self.dag.remove_step(loader.name)
            self._name_counts = counts  # the same name (and signature) in the next run

    def dry_run(
        self, parameters: dict[str, dict[str, Any]] | None = None, batch_size: int = 1, dataset: Any = None
    ) -> Distiset:
        """Run one batch of ``batch_size`` rows from each generator in a throw-away cache.

        ``dataset``: rows for a pipeline without a generator, as in :meth:`run`. The pipeline
        itself is not changed: a later ``run()`` produces the full dataset.
        """
        if dataset is not None:
            with self._dataset_generator(dataset, batch_size):
                return self.dry_run(parameters, batch_size)
        from distil_dagster.engine.runner import run_pipeline

        params = copy.deepcopy(parameters or {})
        for name in self.dag.names:
            if self.dag.step(name).is_generator:
                params.setdefault(name, {})["batch_size"] = batch_size
        return run_pipeline(self, parameters=params, use_cache=False, executor="inline", config=None, dry_run=True)

    # -- YAML -----------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        """The pipeline as plain data (the content of ``pipeline.yaml``)."""
        from distil_dagster.pipeline.serialization import dump_pipeline

        return dump_pipeline(self)

    def save(
        self, path: str | os.PathLike[str], format: Literal["json", "yaml"] | None = None
    ) -> None:  # `format`: distilabel's name
        """Write the pipeline to ``path`` as YAML or JSON (default: JSON for a ``.json`` path, else YAML)."""
        from distil_dagster.pipeline.serialization import dump_text, file_format

        Path(path).write_text(dump_text(self, format or file_format(path)), encoding="utf-8")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Pipeline:
        """Rebuild a pipeline from a ``pipeline.yaml``: a file, or an ``http(s)://`` URL (a Hub
        dataset's ``.../resolve/main/pipeline.yaml``; ``HF_TOKEN`` is sent to the Hub only)."""
        return cls._from_file(path, "yaml")

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> Pipeline:
        """Rebuild a pipeline from a JSON file (or URL) written by ``save(path, format="json")``."""
        return cls._from_file(path, "json")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Pipeline:
        """Rebuild a pipeline from a ``.json`` or ``.yaml``/``.yml`` file or URL, by its suffix."""
        from distil_dagster.pipeline.serialization import file_format

        return cls._from_file(path, file_format(path))

    @classmethod
    def _from_file(cls, path: str | os.PathLike[str], fmt: Literal["json", "yaml"]) -> Pipeline:
        from distil_dagster.pipeline.remote import is_url
        from distil_dagster.pipeline.serialization import load_file

        return load_file(path if isinstance(path, str) and is_url(path) else Path(path), fmt)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pipeline:
        """Rebuild a pipeline from :meth:`dump` output."""
        from distil_dagster.pipeline.serialization import load_pipeline

        return load_pipeline(data)


class RayPipeline:
    """What :meth:`Pipeline.ray` returns: the pipeline, whose ``run`` uses the Ray executor.

    Every other attribute is the pipeline's.
    """

    def __init__(self, pipeline: Pipeline, ray_address: str | None) -> None:
        self.pipeline = pipeline
        self.ray_address = ray_address

    def run(self, *args: Any, **options: Any) -> Distiset:
        """``Pipeline.run`` (same arguments) with ``executor="ray"`` and the head node given to ``ray()``."""
        executor = options.pop("executor", "ray")
        if executor != "ray":
            raise PipelineValidationError(
                [f"Pipeline '{self.pipeline.name}'.ray().run(executor={executor!r}): a Ray pipeline runs on Ray."]
            )
        options.setdefault("ray_address", self.ray_address)
        return self.pipeline.run(*args, executor="ray", **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipeline, name)
