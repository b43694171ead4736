"""The recording capability."""
