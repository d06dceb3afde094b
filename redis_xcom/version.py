"""The package version, in one place (the package, the provider info and the CLI read it)."""

__version__ = "0.1.0"
