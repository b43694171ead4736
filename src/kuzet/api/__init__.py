"""HTTP API (FastAPI) under /api/v1: a thin adapter over the services."""
