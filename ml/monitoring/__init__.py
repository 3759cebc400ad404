"""Model monitoring: realised quality of scores issued a horizon ago, and population stability."""
