class IngestError(RuntimeError):
    """A load that must stop the run; the message says what, where, and what to do."""
