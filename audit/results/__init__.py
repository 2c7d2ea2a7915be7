"""The record of a run (results.json): reading and writing it (``io``), secrets kept out (``redaction``),
provenance (``provenance``), and building it from a session (``record``)."""

from audit.results.io import RESULTS_FILE, SCHEMA_VERSION, check_results, load_results, read_results, write_results

__all__ = ["RESULTS_FILE", "SCHEMA_VERSION", "check_results", "load_results", "read_results", "write_results"]
