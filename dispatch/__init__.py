"""Factory PV-plus-storage dispatch and carbon optimiser."""

__version__ = "0.1.0"
