"""A manifest's runtime, pip file and conda file become one list of PyPI requirements."""

from __future__ import annotations

import pytest

from modelyard.builder.requirements import (
    RUNTIME_REQUIREMENTS,
    SPARK_REQUIREMENTS,
    RuntimeKind,
    combined_requirements,
    parse_pip_requirements,
    runtime_kind,
    translate_conda,
)
from modelyard.domain.errors import Invalid


@pytest.mark.parametrize(
    ("runtime_type", "kind"),
    [
        ("Python", RuntimeKind.PYTHON),
        ("python", RuntimeKind.PYTHON),
        ("ScikitPython", RuntimeKind.PYTHON),
        ("CNTKPython", RuntimeKind.PYTHON),
        ("SparkPython", RuntimeKind.SPARK),
        ("sparkpython", RuntimeKind.SPARK),
        ("parkPython", RuntimeKind.SPARK),
    ],
)
def test_runtime_types_map_to_the_kind_we_build(runtime_type: str, kind: RuntimeKind) -> None:
    assert runtime_kind(runtime_type) is kind


@pytest.mark.parametrize("runtime_type", ["TLC", "", "R"])
def test_unsupported_runtime_types_are_refused_naming_the_supported_ones(
    runtime_type: str,
) -> None:
    with pytest.raises(Invalid) as caught:
        runtime_kind(runtime_type)
    assert caught.value.target == "targetRuntime.runtimeType"
    assert "SparkPython" in caught.value.message
    assert "ScikitPython" in caught.value.message


def test_pip_requirements_keep_specifiers_extras_and_markers() -> None:
    text = """
# a comment
scikit-learn>=1.3,<2   # inline comment
requests[socks, security]==2.31.0
numpy ; python_version < "3.12"
pandas (>=2.0)
six\\
==1.16.0

"""
    assert parse_pip_requirements(text) == [
        "scikit-learn>=1.3,<2",
        "requests[socks, security]==2.31.0",
        'numpy; python_version < "3.12"',
        "pandas (>=2.0)",
        "six ==1.16.0",
    ]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("-e ./mypkg", "editable"),
        ("--editable=git+https://example.com/x.git", "editable"),
        ("-i https://mirror.example.com/simple", "PyPI only"),
        ("--index-url https://mirror.example.com/simple", "PyPI only"),
        ("--extra-index-url https://mirror.example.com/simple", "PyPI only"),
        ("-f ./wheels", "PyPI only"),
        ("--find-links=/tmp/wheels", "PyPI only"),
        ("-r other.txt", "included"),
        ("-c constraints.txt", "included"),
        ("--pre", "not supported"),
        ("./mypkg", "local path"),
        ("/abs/path/pkg", "local path"),
        ("mypkg-1.0-py3-none-any.whl", "archive"),
        ("file:///tmp/pkg.tar.gz", "URL"),
        ("https://example.com/pkg-1.0-py3-none-any.whl", "URL"),
        ("pkg @ https://example.com/pkg-1.0.tar.gz", "URL"),
        ("pkg==1.0 --hash=sha256:abc", "not a requirement"),
        ("not a requirement", "not a requirement"),
    ],
)
def test_pip_lines_that_reach_beyond_pypi_are_refused(line: str, why: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_pip_requirements(f"six\n{line}\n")
    assert caught.value.target == "pipRequirements"
    assert why in caught.value.message
    assert caught.value.message.startswith("line 2:")


CONDA_FILE = """
name: project_environment
channels:
  - conda-forge
  - defaults
dependencies:
  - python=3.11
  - pip
  - numpy=1.26
  - scipy=1.11.3=py311h64a7726_1
  - pandas==2.1.4
  - scikit-learn>=1.3,<2
  - conda-forge::lightgbm
  - xgboost 2.0.3 cpu_h123
  - matplotlib 3.8*
  - pip:
      - requests==2.31.0
      - azureml-defaults
"""


def test_conda_packages_become_pypi_specifiers() -> None:
    translation = translate_conda(CONDA_FILE)
    assert translation.conda_lines == [
        "numpy==1.26.*",
        "scipy==1.11.3",
        "pandas==2.1.4",
        "scikit-learn>=1.3,<2",
        "lightgbm",
        "xgboost==2.0.3",
        "matplotlib==3.8.*",
    ]
    assert translation.conda_names == [
        "numpy",
        "scipy",
        "pandas",
        "scikit-learn",
        "lightgbm",
        "xgboost",
        "matplotlib",
    ]


def test_the_conda_pip_section_is_kept_verbatim() -> None:
    assert translate_conda(CONDA_FILE).pip_lines == ["requests==2.31.0", "azureml-defaults"]


def test_python_pip_and_conda_entries_are_skipped_not_errors() -> None:
    translation = translate_conda("dependencies: [python>=3.10, pip=23.3, conda, six]")
    assert translation.skipped == ["python>=3.10", "pip=23.3", "conda"]
    assert translation.conda_lines == ["six"]


def test_a_conda_version_star_means_the_same_prefix() -> None:
    assert translate_conda("dependencies: [numpy=1.26.*]").conda_lines == ["numpy==1.26.*"]


@pytest.mark.parametrize(
    "text",
    [
        "dependencies: [unclosed",
        "just a string",
        "name: env\nchannels: [defaults]\n",
        "dependencies: {numpy: 1}",
        "dependencies: [42]",
        "dependencies: [{pip: requests}]",
        "dependencies: [{npm: [left-pad]}]",
        "dependencies: ['numpy 1.2|1.3']",
        "dependencies: [\"numpy[version='>=1.2']\"]",
        "dependencies: [{pip: [-e ./local]}]",
    ],
)
def test_conda_files_we_cannot_read_are_invalid(text: str) -> None:
    with pytest.raises(Invalid) as caught:
        translate_conda(text)
    assert caught.value.target == "condaEnvFile"


def test_combined_requirements_put_the_runtime_first_then_pip_then_conda() -> None:
    lines, conda_names = combined_requirements(
        RuntimeKind.PYTHON, "six==1.16.0\n", "dependencies: [numpy=1.26, {pip: [attrs]}]"
    )
    assert lines == [*RUNTIME_REQUIREMENTS, "six==1.16.0", "numpy==1.26.*", "attrs"]
    assert conda_names == ["numpy"]


def test_spark_runtimes_also_get_pyspark() -> None:
    lines, conda_names = combined_requirements(RuntimeKind.SPARK, None, None)
    assert lines == [*RUNTIME_REQUIREMENTS, *SPARK_REQUIREMENTS]
    assert conda_names == []


def test_combined_requirements_report_a_bad_pip_file_by_its_field() -> None:
    with pytest.raises(Invalid) as caught:
        combined_requirements(RuntimeKind.PYTHON, "-i https://elsewhere/simple", None)
    assert caught.value.target == "pipRequirements"
