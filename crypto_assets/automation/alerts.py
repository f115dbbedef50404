"""Alerts: every failed asset check and failed run, sent once, to Slack, a webhook and the log.

The sensor keeps a cursor over the event log (check executions and run failures), so each
failure is announced exactly once however often it ticks. Delivery is retried, and a delivery
that still fails is logged, never raised: a broken webhook must not stop the next alert.
"""

import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import requests
from pydantic import Field

from crypto_assets.klines.partitions import is_range_run

ALERT_SENSOR_INTERVAL_SECONDS = 30
RECENT_EXECUTIONS = 50
FAILED, PLANNED = "FAILED", "PLANNED"
"""Check execution statuses, compared by value: Dagster exports no public enum for them."""


@dataclass(frozen=True)
class Alert:
    """What a person needs to act on a failure, without opening Dagster first."""

    kind: str
    asset: str
    partition: str
    check: str
    severity: str
    run_id: str
    message: str
    offending_open_times: list[str] = field(default_factory=list)

    def text(self) -> str:
        where = f"{self.asset} [{self.partition}]" if self.partition else self.asset
        subject = f"check {self.check} failed" if self.check else "run failed"
        lines = [f"[{self.severity}] {where}: {subject}", self.message, f"run {self.run_id}"]
        if self.offending_open_times:
            lines.append("offending open_times: " + ", ".join(self.offending_open_times))
        return "\n".join(line for line in lines if line)

    def payload(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text()}


class AlertNotifier(dg.ConfigurableResource):
    """Delivers alerts to the Dagster log always, and to Slack and/or a webhook when configured."""

    webhook_url: str | None = Field(default=None, description="POST target for alert JSON.")
    slack_token: str | None = Field(default=None, description="Slack bot token (from env).")
    slack_channel: str | None = Field(default=None, description="Slack channel, e.g. #alerts.")
    attempts: int = Field(default=3, description="Delivery attempts per channel.")
    retry_delay_seconds: float = Field(default=1.0, description="First retry delay; doubles.")
    timeout_seconds: float = Field(default=10.0, description="Timeout of one delivery.")

    def _with_retries(self, channel: str, deliver: Any, log: Any) -> bool:
        delay = self.retry_delay_seconds
        for attempt in range(1, self.attempts + 1):
            try:
                deliver()
                return True
            except Exception as exc:
                if attempt == self.attempts:
                    problem = redact(f"{type(exc).__name__}: {exc}", self._secrets())
                    log.error(
                        f"Alert not delivered to {channel} after {attempt} attempts: {problem}"
                    )
                    return False
                time.sleep(delay)
                delay *= 2
        return False

    def _secrets(self) -> list[str]:
        """What must never reach a log: the webhook URL (its path and query are the credential,
        and requests quotes them without the host) and the Slack token."""
        secrets = [self.slack_token or ""]
        if self.webhook_url:
            parts = urlsplit(self.webhook_url)
            secrets += [self.webhook_url, parts.netloc if "@" in parts.netloc else ""]
            secrets += [parts.path if len(parts.path) > 1 else "", parts.query]
        return secrets

    def _post_webhook(self, alert: Alert) -> None:
        response = requests.post(
            self.webhook_url or "", json=alert.payload(), timeout=self.timeout_seconds
        )
        response.raise_for_status()

    def _post_slack(self, alert: Alert) -> None:
        from dagster_slack import SlackResource

        client = SlackResource(token=self.slack_token or "").get_client()
        client.chat_postMessage(channel=self.slack_channel, text=alert.text())

    def send(self, alert: Alert, log: Any) -> dict[str, bool]:
        """Delivers to every configured channel; returns which ones succeeded."""
        log.warning(alert.text())
        delivered = {"log": True}
        if self.webhook_url:
            delivered["webhook"] = self._with_retries(
                "webhook", lambda: self._post_webhook(alert), log
            )
        if self.slack_token and self.slack_channel:
            delivered["slack"] = self._with_retries("slack", lambda: self._post_slack(alert), log)
        return delivered


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every non-empty secret replaced, longest first (a URL before its path)."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


def notifier_resource(environ: Any = os.environ) -> AlertNotifier:
    return AlertNotifier(
        webhook_url=(
            dg.EnvVar("CRYPTO_ASSETS_ALERT_WEBHOOK_URL")
            if environ.get("CRYPTO_ASSETS_ALERT_WEBHOOK_URL")
            else None
        ),
        slack_token=dg.EnvVar("SLACK_BOT_TOKEN") if environ.get("SLACK_BOT_TOKEN") else None,
        slack_channel=environ.get("CRYPTO_ASSETS_SLACK_CHANNEL") or None,
    )


def _run_partition(run: dg.DagsterRun | None) -> str:
    if run is None:
        return ""
    tags = run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = (
        tags.get("dagster/asset_partition_range_start"),
        tags.get("dagster/asset_partition_range_end"),
    )
    if start and end:
        return start if start == end else f"{start}...{end}"
    return ""


def _metadata_value(metadata: dict[str, Any], key: str) -> Any:
    value = metadata.get(key)
    return getattr(value, "value", value)


def check_failure_alerts(
    instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey], after_id: int
) -> tuple[list[Alert], int]:
    """Alerts for failed check executions newer than ``after_id``, and the new cursor.

    The cursor never passes an execution whose run is still going, so one that fails later is
    seen; a check that raised instead of failing stays PLANNED, and its run's failure alerts.
    A range run records each day too; its one range-wide result is what alerts.
    """
    records = [
        (check_key, record)
        for check_key in check_keys
        for record in instance.event_log_storage.get_asset_check_execution_history(
            check_key, limit=RECENT_EXECUTIONS
        )
        if record.id > after_id
    ]
    pending = [
        record.id
        for _, record in records
        if record.status.value == PLANNED and not _run_finished(instance, record.run_id)
    ]
    horizon = min(pending) if pending else float("inf")
    settled = [(key, record) for key, record in records if record.id < horizon]
    alerts = [
        _check_alert(instance, key, record)
        for key, record in sorted(settled, key=lambda pair: pair[1].id)
        if record.status.value == FAILED
        and not (record.partition and is_range_run(instance.get_run_by_id(record.run_id)))
    ]
    return alerts, max((record.id for _, record in settled), default=after_id)


def _run_finished(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    return run is None or run.is_finished


def _check_alert(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, record: Any) -> Alert:
    evaluation = record.event.dagster_event.event_specific_data if record.event else None
    if not isinstance(evaluation, dg.AssetCheckEvaluation):
        evaluation = None
    metadata = dict(evaluation.metadata) if evaluation else {}
    return Alert(
        kind="check_failed",
        asset=check_key.asset_key.to_user_string(),
        partition=record.partition or _run_partition(instance.get_run_by_id(record.run_id)),
        check=check_key.name,
        severity=evaluation.severity.value if evaluation else "ERROR",
        run_id=record.run_id,
        message=str(
            _metadata_value(metadata, "rule")
            or (evaluation.description if evaluation else None)
            or check_key.name
        ),
        offending_open_times=list(_metadata_value(metadata, "offending_open_times") or []),
    )


def run_failure_alerts(
    instance: dg.DagsterInstance, cursor: str | None
) -> tuple[list[Alert], str | None]:
    result = instance.fetch_run_status_changes(
        dg.DagsterEventType.RUN_FAILURE, limit=RECENT_EXECUTIONS, cursor=cursor, ascending=True
    )
    alerts = []
    for record in result.records:
        run = instance.get_run_by_id(record.run_id)
        alerts.append(
            Alert(
                kind="run_failed",
                asset=", ".join(key.to_user_string() for key in (run.asset_selection or []))
                if run
                else "",
                partition=_run_partition(run),
                check="",
                severity="ERROR",
                run_id=record.run_id,
                message=record.event_log_entry.message or "run failed",
            )
        )
    return alerts, result.cursor if result.records else cursor


@dg.sensor(
    minimum_interval_seconds=ALERT_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends one alert per failed asset check or failed run.",
)
def failure_alerts_sensor(
    context: dg.SensorEvaluationContext, notifier: AlertNotifier
) -> dg.SkipReason:
    state = json.loads(context.cursor) if context.cursor else {}
    check_keys = list(context.repository_def.asset_graph.asset_check_keys)
    check_alerts, newest_check = check_failure_alerts(
        context.instance, check_keys, state.get("check_execution_id", 0)
    )
    run_alerts, run_cursor = run_failure_alerts(context.instance, state.get("run_failure_cursor"))
    for alert in [*check_alerts, *run_alerts]:
        notifier.send(alert, context.log)
    context.update_cursor(
        json.dumps({"check_execution_id": newest_check, "run_failure_cursor": run_cursor})
    )
    return dg.SkipReason(f"Sent {len(check_alerts)} check and {len(run_alerts)} run alerts.")
