"""Signatures and digests behind one small interface: Ed25519 (default) and SM2 with SM3."""
