"""The version of the atomistic package (written into model files)."""

__version__ = "0.1.0"
