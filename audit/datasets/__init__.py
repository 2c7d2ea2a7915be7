"""Datasets the audit runs on (the lead's dataset interface and registry land here)."""
