"""Cross-region outpatient direct settlement (异地就医门诊直接结算) and inter-regional clearing."""

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    """Mount this context's routers."""
