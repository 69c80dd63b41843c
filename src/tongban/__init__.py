"""tongban (通办): several jurisdictions serving their residents as one."""

__version__ = "0.1.0"
