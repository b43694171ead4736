"""Onboarding at scale: the telecom's installation list (CSV/XLSX), ONVIF discovery, cameras that push their stream
from behind NAT, and the field technician's list of offline cameras (docs/cloud.md, "Onboarding")."""
