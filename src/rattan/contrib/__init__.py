"""Optional features with the peer's module names (``pipeline.contrib.*``)."""
