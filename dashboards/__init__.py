"""Grafana boards, alert rules and provisioning, built as code from the measurements
declared in ``sitepulse.streams.contract``."""
