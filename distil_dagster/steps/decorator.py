"""``@step``: turn a function into a step class (distilabel's decorator).

```python
@step(inputs=["instruction"], outputs=["length"])
def InstructionLength(inputs: StepInput, factor: RuntimeParameter[int] = 1) -> StepOutput:
    for row in inputs:
        row["length"] = len(row["instruction"]) * factor
    yield inputs
```

The function's keyword parameters become runtime parameters. The returned class lives at the
function's module and name, so ``pipeline.yaml`` can import it back. ``function_class`` and
``columns_property`` are how: ``@task`` (``steps/tasks/decorator.py``) builds its classes with them too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, overload

from distil_dagster.mixins.runtime_parameters import _RUNTIME_PARAMETER_ANNOTATION, RuntimeParameter
from distil_dagster.steps.base import _STEP_INPUT_ANNOTATION, GeneratorStep, GlobalStep, Step, _Step
from distil_dagster.steps.typing import StepColumns

__all__ = ["columns_property", "function_class", "step"]

ClassT = TypeVar("ClassT", bound=type)

_BASES: dict[str, type[_Step]] = {"normal": Step, "global": GlobalStep, "generator": GeneratorStep}


def function_class(func: Callable[..., Any], base: ClassT, namespace: dict[str, Any]) -> ClassT:
    """A subclass of ``base`` with ``namespace``, named and placed as ``func`` (module, qualified name).

    A decorator returning it rebinds the function's name to the class, so ``<module>.<name>`` finds
    the class: pickling by reference (what worker processes receive) and the ``type_info`` of
    ``pipeline.yaml`` both import it back that way. The class's docstring is the function's unless
    ``namespace`` gives one.
    """
    body = {"__doc__": func.__doc__, **namespace, "__module__": func.__module__, "__qualname__": func.__qualname__}
    cls: ClassT = type(func.__name__, (base,), body)  # type: ignore[assignment]  # a subclass of base
    return cls


def columns_property(columns: StepColumns | None) -> property:
    """An ``inputs``/``outputs`` property answering a fresh copy of ``columns`` (``[]`` for ``None``)."""
    return property(lambda self: dict(columns) if isinstance(columns, dict) else list(columns or []))


def _is_step_input(param: inspect.Parameter) -> bool:
    annotation = param.annotation
    if isinstance(annotation, str):
        return "StepInput" in annotation
    return get_origin(annotation) is Annotated and _STEP_INPUT_ANNOTATION in get_args(annotation)[1:]


def _is_runtime_annotation(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return "RuntimeParameter" in annotation
    return any(
        get_origin(a) is Annotated and _RUNTIME_PARAMETER_ANNOTATION in get_args(a)[1:]
        for a in (annotation, *get_args(annotation))
    )


@overload
def step(
    inputs: StepColumns | None = None,
    outputs: StepColumns | None = None,
    step_type: Literal["normal", "global"] = "normal",
) -> Callable[[Callable[..., Any]], type[Step]]: ...
@overload
def step(
    inputs: StepColumns | None = None,
    outputs: StepColumns | None = None,
    *,
    step_type: Literal["generator"],
) -> Callable[[Callable[..., Any]], type[GeneratorStep]]: ...
def step(
    inputs: StepColumns | None = None,
    outputs: StepColumns | None = None,
    step_type: Literal["normal", "global", "generator"] = "normal",
) -> Callable[[Callable[..., Any]], type[Any]]:
    """Create a step class from a function; keyword parameters become runtime parameters."""
    if step_type not in _BASES:
        raise ValueError(f"step_type must be one of {sorted(_BASES)}, got {step_type!r}.")

    def decorator(func: Callable[..., Any]) -> type[_Step]:
        hints = inspect.get_annotations(func, eval_str=True)
        fields: dict[str, Any] = {}
        runtime_names: list[str] = []
        for name, param in inspect.signature(func).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or (
                name in hints and _is_step_input_hint(hints[name])
            ):
                continue
            if step_type == "generator" and name == "offset":
                continue
            if param.default is inspect.Parameter.empty and param.kind is param.POSITIONAL_ONLY:
                continue
            if hasattr(_BASES[step_type], name):
                raise ValueError(
                    f"@step function {func.__name__!r}: parameter {name!r} would become a runtime parameter "
                    f"hiding the step's own {name!r}; annotate the rows parameter `{name}: StepInput`, or "
                    "rename the parameter."
                )
            annotation = hints.get(name, Any)
            if not _is_runtime_annotation(annotation):
                annotation = RuntimeParameter[annotation]  # type: ignore[misc,valid-type]  # alias applied at runtime
            default = None if param.default is inspect.Parameter.empty else param.default
            fields[name] = (annotation, default)
            runtime_names.append(name)
        takes_offset = "offset" in inspect.signature(func).parameters
        base = _BASES[step_type]
        namespace: dict[str, Any] = {
            "inputs": columns_property(inputs),
            "outputs": columns_property(outputs),
            "_runtime_kwargs": lambda self: {n: getattr(self, n) for n in runtime_names},
        }
        if step_type == "generator":

            def process_generator(self: Any, offset: int = 0, **kwargs: Any) -> Any:
                return func(offset=offset, **kwargs) if takes_offset else func(**kwargs)

            namespace["process"] = process_generator
        else:

            def process(self: Any, *args: Any, **kwargs: Any) -> Any:
                return func(*args, **kwargs)

            signature = inspect.signature(func)
            self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
            process.__signature__ = signature.replace(parameters=[self_param, *signature.parameters.values()])  # type: ignore[attr-defined]  # validation reads it
            namespace["process"] = process
        namespace["__annotations__"] = {name: annotation for name, (annotation, _) in fields.items()}
        namespace.update({name: default for name, (_, default) in fields.items()})
        return function_class(func, base, namespace)

    return decorator


def _is_step_input_hint(hint: Any) -> bool:
    return get_origin(hint) is Annotated and _STEP_INPUT_ANNOTATION in get_args(hint)[1:]
