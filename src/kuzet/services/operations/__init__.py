"""The operations capability."""
