"""Uploaded files: the attachment store shared by every context that takes uploads."""
