"""The telecom's cloud video service (docs/cloud.md): plans, building contracts and subscribers, activation codes,
billing, routing agreements with police units, retention compliance, and the resident's portal."""
