"""The crime capability."""
