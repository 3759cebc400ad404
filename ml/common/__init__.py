"""Shared by both models: config, data access, metrics, registry, output contract, oracle."""
