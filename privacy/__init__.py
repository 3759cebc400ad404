"""Privacy: erase one person from every layer and keep them out of later loads.

- ``erasure``: who the person is (every id the warehouse joined to them), where they are,
  the erasure itself, its audit without personal data, and the check afterwards.

Governance, not activation: it may use ingest (the suppression list that keeps erased
people out of loads) and activate (the CRM writeback, the published snapshot); neither
of those imports privacy.
"""
