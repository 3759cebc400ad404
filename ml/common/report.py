"""HTML helpers shared by the churn and recommendation reports."""

from __future__ import annotations

import html


def html_table(rows: dict[str, dict], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["model", *cols])
    body = []
    for name, m in rows.items():
        cells = "".join(
            f"<td>{m[c]:.4f}</td>" if isinstance(m.get(c), float) else f"<td>{m.get(c, '')}</td>"
            for c in cols
        )
        body.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
