"""Persistence: the metadata database, files on disk, the event bus."""
