"""Integration dashboard and open data (issue 18)."""
