"""The safe-yard registry: yard passports with protected personal data."""
