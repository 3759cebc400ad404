"""The analysts' and account teams' web app over the published snapshot (``make app``).

Reads only ``settings.published`` (read-only) and the model registry / reports; never
the warehouse, so it neither blocks nor is blocked by a pipeline run.
"""
