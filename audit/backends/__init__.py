"""Scoring backends (the lead's registry replaces this placeholder at merge)."""
