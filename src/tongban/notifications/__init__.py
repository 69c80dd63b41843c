"""Message centre and outbound channels (issue 13)."""
