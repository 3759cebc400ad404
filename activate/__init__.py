"""Activate: put the scores where people work.

- ``publish``: an atomic snapshot of the marts for readers and BI tools.
- ``writeback``: diff-based reverse ETL of scores onto CRM contacts, honouring consent.
- ``summary``: the run summary a human reads at the end of a run.
"""
