"""The data-docs assets vendored at install time (see vendor.py and assets.json)."""
