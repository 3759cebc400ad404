"""Ingest: extract CRM tables and web/app event files into the warehouse's ``raw`` layer.

Incremental and idempotent: CRM tables by ``updated_at`` watermark with a merge on the
primary key; event files through a manifest of loaded files. Records that cannot be
loaded go to ``raw.quarantine`` with a reason, never silently lost.
"""

from ingest.crm import extract_crm
from ingest.errors import IngestError
from ingest.events import load_events

__all__ = ["IngestError", "extract_crm", "load_events"]
