"""Several recorder nodes sharing the cameras: leases with heartbeats and fencing tokens (docs/scale.md)."""
