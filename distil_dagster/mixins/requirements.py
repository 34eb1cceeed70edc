"""Packages a step or a pipeline needs to run (distilabel's ``requirements``), and which are missing.

A requirement is a PEP 508 string (``"transformers>=4.40"``). distilabel 1.5.3 checks an installed
package by its import name and calls any requirement with a version specifier missing unless the
installed version is spelled exactly like the specifier; here the distribution's installed version
is tested against the specifier, and an environment marker that does not apply skips the
requirement.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["missing_requirement", "parse_requirements"]


def parse_requirements(values: Iterable[object], owner: str) -> list[str]:
    """``values`` checked as PEP 508 requirements, without duplicates, sorted; a bad one raises
    ``ValueError`` naming ``owner`` (e.g. "Step 'judge'") and the string."""
    if isinstance(values, str):
        values = [values]
    values = list(values)
    if not values:
        return []
    from packaging.requirements import InvalidRequirement, Requirement  # only when there is one to read

    parsed = []
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"{owner}: requirement {value!r} is not a string.")
        try:
            parsed.append(str(Requirement(value)))
        except InvalidRequirement as exc:
            raise ValueError(f"{owner}: requirement {value!r} is not a valid requirement ({exc}).") from None
    return sorted(set(parsed))


def missing_requirement(requirement: str) -> str | None:
    """Why ``requirement`` is not met in this environment (``None``: it is)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    parsed = Requirement(requirement)
    if parsed.marker is not None and not parsed.marker.evaluate():
        return None
    try:
        installed = version(parsed.name)
    except PackageNotFoundError:
        return "not installed"
    if parsed.specifier and not parsed.specifier.contains(installed, prereleases=True):
        return f"installed {installed}"
    return None
