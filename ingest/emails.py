"""Email as a join key: one rule, owned by the dbt macro ``normalise_email``.

The owner is ``dbt_project/macros/normalise_email.sql`` (``nullif(lower(trim(x)), '')``):
the identity graph's ``email_normalised`` and ``email_hash`` come from it, and what
suppression and erasure compare against are those warehouse values. So every SQL
expression Python builds for an email column is the macro itself, read from its file
(:func:`email_sql`) — there is no second copy of the SQL to drift.

:func:`normalise_email` is the same rule for a value that never reaches SQL (an email on
the command line, a field of a quarantined record that is hashed in Python), kept in
Python so hashing stays cheap and engine-independent. ``tests/ingest/test_email_rule.py``
checks it against the macro on DuckDB and Postgres for case, surrounding spaces, tabs and
plus-tags. Known, unchanged engine differences the rule does not settle: DuckDB's
``trim`` also strips a non-breaking space (Postgres and Python keep it), and Python
lower-cases a dotted capital I to ``i̇`` where both databases give ``i``.
"""

from __future__ import annotations

import re
from functools import cache

from customer720.settings import PROJECT_ROOT

MACRO_PATH = PROJECT_ROOT / "dbt_project" / "macros" / "normalise_email.sql"
_MACRO = re.compile(
    r"\{%-?\s*macro\s+normalise_email\((\w+)\)\s*-?%\}(.*?)\{%-?\s*endmacro\s*-?%\}", re.S
)


@cache
def _macro_body() -> tuple[str, str]:
    found = _MACRO.search(MACRO_PATH.read_text())
    if found is None:
        raise RuntimeError(f"no normalise_email(column) macro in {MACRO_PATH}")
    return found.group(1), found.group(2).strip()


def email_sql(expr: str) -> str:
    """The dbt macro ``normalise_email`` applied to the SQL expression ``expr``."""
    arg, body = _macro_body()
    return re.sub(r"\{\{\s*" + arg + r"\s*\}\}", lambda _: expr, body)


def normalise_email(email: str) -> str:
    """As :func:`email_sql` on one value: ``lower(trim(email))`` (SQL trims spaces only).

    An empty result stays ``""`` here where SQL gives null.
    """
    return email.strip(" ").lower()
