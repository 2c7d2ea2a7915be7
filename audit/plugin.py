"""pytest plugin: wires the audit's options, fixtures and artifacts into pytest. No logic lives here."""
