"""The service-matter catalogue (事项)."""
