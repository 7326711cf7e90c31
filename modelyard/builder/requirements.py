"""Turn a manifest's target runtime into one list of PyPI requirement lines.

A manifest names its runtime (`Python`, `SparkPython`, …) and may carry a pip
requirements file and a conda environment file. Images are built with uv from PyPI
only, so both are reduced here to plain requirement specifiers, and everything that
would make a build reach somewhere else is refused up front with a clear error rather
than failing (or succeeding surprisingly) half-way through a build:

- pip options (`-e`, `-i`/`--index-url`, `--extra-index-url`, `-f`/`--find-links`,
  `-r`/`-c` includes, and any other `-…` line): they point at other indexes, local
  paths or files we do not have, or change resolution behind the lock's back;
- local paths, archives and direct URLs (`./pkg`, `file:…`, `pkg @ https://…`,
  `https://…/x.whl`): an image must be rebuildable from its lock alone, and a URL is
  a download from wherever the manifest's author chose.

Conda packages are translated to the PyPI package of the same name; most scientific
Python packages use the same name on both, and a build names the ones that do not.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelyard.domain.errors import Invalid

__all__ = [
    "RUNTIME_REQUIREMENTS",
    "SPARK_REQUIREMENTS",
    "CondaTranslation",
    "RuntimeKind",
    "builtin_requirements",
    "combined_requirements",
    "parse_pip_requirements",
    "runtime_kind",
    "translate_conda",
]

RUNTIME_REQUIREMENTS: tuple[str, ...] = (
    "uvicorn>=0.30,<1",
    "httptools>=0.6,<1",
    "uvloop>=0.19,<1",
    "prometheus-client>=0.20,<1",
)
"""What the modelyard scoring runtime needs in every image's environment."""

SPARK_REQUIREMENTS: tuple[str, ...] = ("pyspark>=3.5,<5",)
"""Added for Spark runtimes, whose drivers expect a local Spark session."""

_BUILTIN_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "sklearn": ("scikit-learn", "joblib"),
    "onnx": ("onnxruntime", "numpy"),
    "mlflow": ("mlflow",),
}


def builtin_requirements(kind: str) -> tuple[str, ...]:
    """What a built-in driver (`sklearn`, `onnx`, `mlflow`) needs besides the runtime.

    Unpinned: the model's own requirements (from its manifest) pin versions when the
    model needs particular ones. An unknown kind needs nothing (and the runtime
    refuses it at start-up, naming the known ones).
    """
    return _BUILTIN_REQUIREMENTS.get(kind.strip().lower(), ())


class RuntimeKind(enum.Enum):
    """The kinds of environment we build; the seeds' many runtime names map onto these."""

    PYTHON = "python"
    SPARK = "spark"


# "parkPython" is a typo in the 2017 API's documentation that clients copied.
_RUNTIME_KINDS = {
    "python": RuntimeKind.PYTHON,
    "scikitpython": RuntimeKind.PYTHON,
    "cntkpython": RuntimeKind.PYTHON,
    "sparkpython": RuntimeKind.SPARK,
    "parkpython": RuntimeKind.SPARK,
}
_SUPPORTED_RUNTIMES = "Python, ScikitPython, CNTKPython and SparkPython"


def runtime_kind(runtime_type: str) -> RuntimeKind:
    """Map a manifest's `targetRuntime.runtimeType` (any case) to the kind we build."""
    kind = _RUNTIME_KINDS.get(runtime_type.strip().lower())
    if kind is None:
        raise Invalid(
            f"Unsupported runtimeType {runtime_type!r}: supported runtimes are "
            f"{_SUPPORTED_RUNTIMES}.",
            target="targetRuntime.runtimeType",
        )
    return kind


@dataclass(frozen=True)
class CondaTranslation:
    """A conda environment file reduced to PyPI requirement lines."""

    pip_lines: list[str] = field(default_factory=list)
    """From the `pip:` sub-list, as written (after the same checks as a pip file)."""
    conda_lines: list[str] = field(default_factory=list)
    """Conda packages translated to PyPI specifiers (`numpy=1.26` -> `numpy==1.26.*`)."""
    skipped: list[str] = field(default_factory=list)
    """Entries that are not packages for us (python, pip, conda): logged, not errors."""

    @property
    def conda_names(self) -> list[str]:
        """The bare package names behind `conda_lines`, for naming ones PyPI lacks."""
        names = []
        for line in self.conda_lines:
            match = _NAME_RE.match(line)
            if match is not None:
                names.append(match.group(0))
        return names


# PEP 508 names; versions as PEP 440 allows them plus wildcards.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_NAME_RE = re.compile(_NAME)
_VERSION_CLAUSE = r"(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9_.*+!-]+"
_SPECIFIER = rf"{_VERSION_CLAUSE}(?:\s*,\s*{_VERSION_CLAUSE})*"
_REQUIREMENT_RE = re.compile(
    rf"^{_NAME}\s*(?:\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\])?\s*"
    rf"(?:{_SPECIFIER}|\(\s*{_SPECIFIER}\s*\))?$"
)
_ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".egg")
_INDEX_OPTIONS = frozenset(
    {
        "-i",
        "--index-url",
        "--extra-index-url",
        "--no-index",
        "-f",
        "--find-links",
        "--trusted-host",
    }
)
_INCLUDE_OPTIONS = frozenset({"-r", "--requirement", "-c", "--constraint"})
_EDITABLE_OPTIONS = frozenset({"-e", "--editable"})


def parse_pip_requirements(text: str, *, target: str = "pipRequirements") -> list[str]:
    """Return the requirement lines of a pip requirements file, refusing unsafe ones.

    Comments, blank lines and `\\` continuations are handled as pip does. Kept:
    names with extras, version specifiers and environment markers (`; python_version<"3.12"`).
    Refused with Invalid (naming `target`): every option line, local paths, archives
    and URLs; see the module docstring for why.
    """
    result: list[str] = []
    for number, line in _logical_lines(text):
        if line.startswith("-"):
            raise Invalid(_option_message(number, line), target=target)
        head, _, marker = line.partition(";")
        head = head.strip()
        lowered = head.lower()
        if "://" in head or lowered.startswith("file:") or "@" in head:
            raise Invalid(
                f"line {number}: {head!r} is a direct URL; name a package from PyPI instead "
                "(images are built from PyPI only, so they can be rebuilt from their lock)",
                target=target,
            )
        if (
            "/" in head
            or "\\" in head
            or head.startswith((".", "~"))
            or lowered.endswith(_ARCHIVE_SUFFIXES)
        ):
            raise Invalid(
                f"line {number}: {head!r} is a local path or archive; name a package from PyPI "
                "instead",
                target=target,
            )
        if not _REQUIREMENT_RE.match(head):
            raise Invalid(
                f"line {number}: {head!r} is not a requirement specifier "
                "(expected e.g. 'scikit-learn>=1.3' or 'requests[socks]==2.31.0')",
                target=target,
            )
        result.append(f"{head}; {marker.strip()}" if marker.strip() else head)
    return result


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines without comments, joined across `\\` continuations, numbered from 1."""
    result: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            result.append((start, line))
    if pending.strip():
        result.append((start, pending.strip()))
    return result


def _option_message(number: int, line: str) -> str:
    option = re.split(r"[\s=]", line, maxsplit=1)[0]
    if option in _EDITABLE_OPTIONS:
        why = "editable installs point at local paths or repositories"
    elif option in _INDEX_OPTIONS:
        why = "images are built from PyPI only"
    elif option in _INCLUDE_OPTIONS:
        why = "included files are not part of the manifest"
    else:
        why = "pip options are not supported; list plain requirement specifiers"
    return f"line {number}: option {option!r} is not allowed: {why}"


# Conda entries that are the toolchain rather than a package for the environment.
_CONDA_SKIPPED_NAMES = frozenset({"python", "pip", "conda"})
_CONDA_SPEC_RE = re.compile(rf"^(?:[^\s:]+::)?({_NAME})\s*(.*)$")
_CONDA_TARGET = "condaEnvFile"


def translate_conda(yaml_text: str) -> CondaTranslation:
    """Translate a conda environment file's `dependencies` into PyPI requirement lines.

    Conda's version syntax differs from PyPI's: `name=1.2` means any 1.2.x
    (`name==1.2.*`), `name=1.2.3=build` pins an exact version of one build
    (`name==1.2.3`: builds do not exist on PyPI), `name 1.2.3` is exact, comparisons
    (`>=1.3,<2`) read the same, and a channel prefix (`conda-forge::numpy`) only says
    where conda would look. `channels` are ignored for the same reason.

    Raises Invalid (target `condaEnvFile`) when the YAML cannot be parsed, is not a
    mapping with a `dependencies` list, or holds an entry we cannot translate.
    """
    try:
        document: Any = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        raise Invalid(
            f"conda environment file is not valid YAML: {exc}", target=_CONDA_TARGET
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("dependencies"), list):
        raise Invalid(
            "conda environment file must be a mapping with a 'dependencies' list",
            target=_CONDA_TARGET,
        )
    pip_lines: list[str] = []
    conda_lines: list[str] = []
    skipped: list[str] = []
    for entry in document["dependencies"]:
        if isinstance(entry, dict):
            pip_lines.extend(_conda_pip_section(entry))
        elif isinstance(entry, str):
            line = _conda_spec_to_pypi(entry)
            if line is None:
                skipped.append(entry.strip())
            else:
                conda_lines.append(line)
        else:
            raise Invalid(
                f"conda dependency {entry!r} is neither a package spec nor a 'pip:' list",
                target=_CONDA_TARGET,
            )
    return CondaTranslation(pip_lines=pip_lines, conda_lines=conda_lines, skipped=skipped)


def _conda_pip_section(entry: dict[Any, Any]) -> list[str]:
    if set(entry) != {"pip"} or not isinstance(entry["pip"], list):
        raise Invalid(
            f"conda dependency {entry!r} is not a 'pip:' list of requirements",
            target=_CONDA_TARGET,
        )
    if not all(isinstance(item, str) for item in entry["pip"]):
        raise Invalid("every 'pip:' entry must be a requirement string", target=_CONDA_TARGET)
    return parse_pip_requirements("\n".join(entry["pip"]), target=_CONDA_TARGET)


def _conda_spec_to_pypi(spec: str) -> str | None:
    """One conda match spec as a PyPI requirement line; None for toolchain entries."""
    match = _CONDA_SPEC_RE.match(spec.strip())
    if match is None:
        raise Invalid(f"conda dependency {spec!r} is not a package spec", target=_CONDA_TARGET)
    name, rest = match.group(1), match.group(2).strip()
    if name.lower() in _CONDA_SKIPPED_NAMES:
        return None
    if not rest:
        return name
    if "|" in rest or "[" in rest:
        raise Invalid(
            f"conda dependency {spec!r} uses alternatives or bracket options, which have no "
            "PyPI equivalent; write a plain version constraint",
            target=_CONDA_TARGET,
        )
    if rest.startswith("="):
        exact = rest.startswith("==")
        version, *build = rest.lstrip("=").split("=")
        if not exact and not build:
            version = _fuzzy(version)
        return _checked(spec, f"{name}=={version.strip()}")
    if rest[0] in "<>!~":
        return _checked(spec, f"{name}{rest.replace(' ', '')}")
    # The space-separated form: "name 1.2.3" (exact) or "name 1.2.3 build".
    version = rest.split()[0]
    return _checked(spec, f"{name}=={_star(version)}")


def _fuzzy(version: str) -> str:
    """Conda's `=1.2` means 1.2 or any 1.2.x, which PEP 440 writes `==1.2.*`."""
    version = version.strip()
    return _star(version) if version.endswith("*") else f"{version}.*"


def _star(version: str) -> str:
    """Conda allows `1.2*`; PEP 440 only allows a wildcard after a dot."""
    if version.endswith("*") and not version.endswith(".*"):
        return version[:-1].rstrip(".") + ".*"
    return version


def _checked(spec: str, line: str) -> str:
    if not _REQUIREMENT_RE.match(line):
        raise Invalid(
            f"conda dependency {spec!r} cannot be translated to a PyPI requirement",
            target=_CONDA_TARGET,
        )
    return line


def combined_requirements(
    kind: RuntimeKind, pip_text: str | None, conda_text: str | None
) -> tuple[list[str], list[str]]:
    """Every requirement line an image's environment needs, and the conda package names.

    Returns (runtime requirements + Spark's if SPARK + the pip file + translated conda
    packages + the conda file's `pip:` list, the names of the conda-translated
    packages). The names let a failed resolve say which conda packages PyPI lacks.
    """
    lines = list(RUNTIME_REQUIREMENTS)
    if kind is RuntimeKind.SPARK:
        lines.extend(SPARK_REQUIREMENTS)
    if pip_text:
        lines.extend(parse_pip_requirements(pip_text))
    conda_names: list[str] = []
    if conda_text:
        conda = translate_conda(conda_text)
        lines.extend(conda.conda_lines)
        lines.extend(conda.pip_lines)
        conda_names = conda.conda_names
    return lines, conda_names
