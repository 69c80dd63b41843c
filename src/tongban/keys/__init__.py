"""Signing keys of this node: one per purpose and owner, rotated without breaking what
they signed before. Private keys stay in this node's database; public keys travel."""
