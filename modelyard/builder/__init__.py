"""Image building: requirements to locks, locks to environments, contexts to containers."""

from modelyard.builder.container import build_and_push, engine_available, image_reference
from modelyard.builder.environments import (
    READY_MARKER,
    Environment,
    EnvironmentBuilder,
    FakeEnvironmentBuilder,
    Lock,
    UvEnvironmentBuilder,
    runtime_bundle_version,
)
from modelyard.builder.requirements import (
    RUNTIME_REQUIREMENTS,
    SPARK_REQUIREMENTS,
    CondaTranslation,
    RuntimeKind,
    combined_requirements,
    parse_pip_requirements,
    runtime_kind,
    translate_conda,
)
from modelyard.builder.subprocesses import CancelToken, LogSink, Never, run_logged

__all__ = [
    "READY_MARKER",
    "RUNTIME_REQUIREMENTS",
    "SPARK_REQUIREMENTS",
    "CancelToken",
    "CondaTranslation",
    "Environment",
    "EnvironmentBuilder",
    "FakeEnvironmentBuilder",
    "Lock",
    "LogSink",
    "Never",
    "RuntimeKind",
    "UvEnvironmentBuilder",
    "build_and_push",
    "combined_requirements",
    "engine_available",
    "image_reference",
    "parse_pip_requirements",
    "run_logged",
    "runtime_bundle_version",
    "runtime_kind",
    "translate_conda",
]
