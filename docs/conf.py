"""Sphinx configuration of the redis-xcom documentation site (`make docs`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))
# autodoc imports Airflow (api.md): it gets a scratch home under _build, never ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(HERE / "_build" / "airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from redis_xcom.version import __version__  # noqa: E402

project = "redis-xcom"
author = "The redis-xcom authors"
copyright = "The redis-xcom authors; Apache License 2.0"
release = __version__
version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "redis_xcom_docs"]
# The Python API page (api.md): signatures without annotations (they name Airflow's and typing's
# internals), the class's own docstring then __init__'s.
autodoc_typehints = "none"
autodoc_class_signature = "separated"
autodoc_default_options = {"exclude-members": "__init__, __new__"}
autodoc_preserve_defaults = True
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
# Links such as [Sentinel](topologies.md#sentinel) are checked at build time.
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"redis-xcom {__version__}"
html_static_path = ["_static"]
# Long env-var names, URLs and code lines wrap instead of being cut off (tests/test_docs_layout.py).
html_css_files = ["redis-xcom.css"]

# The machines that build the docs have no internet: linkcheck checks only links inside the site.
# The benchmark chart links to its own full-size copy, which exists only in the built site.
linkcheck_ignore = [r"https?://.*", r"^_images/"]
linkcheck_anchors = False
