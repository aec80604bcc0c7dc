"""localml-kit: find, inspect, run, measure, shrink and ship ML models on your own machine.

Example:
    >>> import localml_kit
    >>> localml_kit.__version__
    '0.1.0'
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
