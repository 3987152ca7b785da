"""The audit trail of operator commands: who changed state, why, and on what. The CLI
publishes one ``AuditRecord`` per command that changed something; the worker stores
them in the ``audit`` measurement; ``sitepulse export audit`` reads them back."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterable
from datetime import datetime, timezone

import msgspec

from ..runtime.settings import Settings
from .contract import AUDIT_TOPIC, AuditRecord
from .publisher import SitePublisher
from .topics import ensure_topics


def operator_name(settings: Settings) -> str:
    """SITEPULSE_OPERATOR if set (the person, where one login serves several), else the
    login that ran the command."""
    if settings.operator:
        return settings.operator
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def publish_audited(
    settings: Settings, topic: str, records: Iterable[tuple[bytes, bytes]], action: str, subject: str, reason: str
) -> None:
    """Records (key, value) on ``topic`` and, with them, who did it and why: what every
    operator command that changes state sends."""
    ensure_topics(settings)
    with SitePublisher(settings) as publisher:
        for key, value in records:
            publisher.send_keyed(topic, key, value)
        record_audit(settings, publisher, action, subject, reason)
        publisher.flush()


def record_audit(settings: Settings, publisher: SitePublisher, action: str, subject: str, reason: str) -> AuditRecord:
    record = AuditRecord(action, operator_name(settings), reason, subject, datetime.now(timezone.utc), socket.gethostname())
    publisher.send_keyed(AUDIT_TOPIC, action.encode(), msgspec.json.encode(record))
    return record
