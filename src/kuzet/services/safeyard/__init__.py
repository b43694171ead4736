"""The safeyard capability."""
