"""Alerts: the failure callback of Airflow tasks, and :func:`alert` for what must reach
people without failing a task (the model monitoring gate).

By default an alert is logged (with the task, date and error for a failure). To page
someone, set ``C720_ALERT_WEBHOOK`` to a Slack (or compatible) incoming-webhook URL; the
message is posted there as well. Email alerts on failure use Airflow's own SMTP settings
(``email_on_failure``).
"""

from __future__ import annotations

import json
import logging
import urllib.request

from customer720.settings import get_settings

log = logging.getLogger("customer720.alerts")


def _run_date(context: dict) -> str:
    """The date the run works on (conf, asset event, logical date): a triggered or
    asset-started run has no logical date, so ``ds`` would say None."""
    from orchestrate.dag_support import run_date  # it imports this module

    try:
        return run_date(context).isoformat()
    except Exception:  # a callback never fails over its message
        return str(context.get("ds"))


def log_failure(context: dict) -> None:
    ti = context.get("task_instance")
    message = (
        f"customer720 task failed: {getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')} "
        f"for {_run_date(context)}: {context.get('exception')}"
    )
    alert(message)


def alert(message: str) -> None:
    """Log ``message`` as an error and post it to ``C720_ALERT_WEBHOOK`` when set; never
    raises (an alert that cannot be posted is logged as a warning)."""
    log.error(message)
    webhook = get_settings().alert_webhook
    if webhook:
        request = urllib.request.Request(
            webhook,
            data=json.dumps({"text": message}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(request, timeout=10)
        except OSError as exc:
            log.warning("could not post the alert to C720_ALERT_WEBHOOK: %s", exc)
