"""Page routers, one module per capability; each may declare ``NAV`` (a list of render.NavItem)."""
