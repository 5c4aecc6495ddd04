"""The ``keel`` command: one module per command group; the only place that formats for a terminal."""
