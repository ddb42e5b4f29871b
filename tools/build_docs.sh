#!/usr/bin/env bash
# Builds the HTML documentation into docs/_build/html with warnings as errors (a broken
# reference, a malformed docstring or a page left out of the toctree fails the build).
# Installs nothing: pip install ".[docs]" first, or build the extension in place
# (python setup.py build_ext --inplace) and pip install the docs extra's tools.
# The docstrings' examples are run by the test suite, not here.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
