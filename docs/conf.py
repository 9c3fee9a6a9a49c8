"""Sphinx configuration: `python -m sphinx -W -b html docs docs/_build/html`."""

project = "diffrep"
author = "diffrep developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.mathjax", "numpydoc"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_mock_imports = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
templates_path = ["_templates"]
