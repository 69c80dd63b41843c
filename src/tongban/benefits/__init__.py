"""免申即享: benefits without applying (issue 17)."""
