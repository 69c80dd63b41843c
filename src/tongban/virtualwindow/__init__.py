"""Cross-province remote virtual window (issue 16)."""
