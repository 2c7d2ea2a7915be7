"""Dataset stage: items and their designs (the lead's version of this file wins at merge)."""
