"""Sphinx configuration of cconv's documentation (tools/build_docs.sh builds it)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
# Document the in-place build (python setup.py build_ext --inplace) when there is one; otherwise
# the installed package (pip install ".[docs]"), which a bare src/cconv without its compiled
# extension would shadow.
if any((SRC / "cconv").glob("_core*.so")) or any((SRC / "cconv").glob("_core*.pyd")):
    sys.path.insert(0, str(SRC))

import cconv  # noqa: E402

project = "cconv"
author = "cconv developers"
copyright = "2026, cconv developers"
release = cconv.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# The user guide and developer pages are plain Markdown, also read on GitHub: headings get
# anchors so that page#section links resolve.
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# Docstrings: NumPy style (Parameters, Returns, Raises, Notes, Examples), rendered by napoleon,
# which accepts docstrings that are not (yet) in that style without warnings.
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
# An "Attributes" section is a field list, not object descriptions that would repeat the
# documented members.
napoleon_use_ivar = True
napoleon_preprocess_types = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_mock_imports = ["torch", "matplotlib", "threadpoolctl"]

html_theme = "alabaster"
html_title = f"cconv {release}"
html_static_path: list = []
