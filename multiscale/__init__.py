"""multiscale: case files, the CLI and the public API of the atomistic-to-continuum framework."""

__version__ = "0.1.0"
