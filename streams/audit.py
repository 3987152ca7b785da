"""The audit trail of operator commands: who changed state, why, and on what. The CLI
publishes one ``AuditRecord`` per command that changed something; the worker stores
them in the ``audit`` measurement; ``sitepulse export audit`` reads them back."""

from __future__ import annotations

import getpass
import socket
from datetime import datetime, timezone

import msgspec

from ..settings import Settings
from .contract import AUDIT_TOPIC, AuditRecord
from .publisher import SitePublisher


def operator_name(settings: Settings) -> str:
    """SITEPULSE_OPERATOR if set (the person, where one login serves several), else the
    login that ran the command."""
    if settings.operator:
        return settings.operator
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_audit(settings: Settings, publisher: SitePublisher, action: str, subject: str, reason: str) -> AuditRecord:
    record = AuditRecord(action, operator_name(settings), reason, subject, datetime.now(timezone.utc), socket.gethostname())
    publisher.send_keyed(AUDIT_TOPIC, action.encode(), msgspec.json.encode(record))
    return record
