"""Optional features with bamboo-pipeline's module names (``pipeline.contrib.*``)."""
