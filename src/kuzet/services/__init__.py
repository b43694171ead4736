"""Services: the work Kuzet does (accounts, access, audit, cameras, recording, analytics, …)."""
