"""Kuzet — city video surveillance and public safety platform."""

__version__ = "0.1.0"
