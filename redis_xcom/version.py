"""The package version, in one place (pyproject.toml, the package, the provider info and the CLI read it).

Semantic versioning: the reference and key format and the stored value format are versioned, and a
release reads what every earlier 1.x release wrote (tests/test_compat_fixtures.py).
"""

__version__ = "1.0.0"
