"""customer720: shared plumbing (settings, logging) used by every pipeline stage."""
