"""The domain core: plain functions and small classes over plain data.

No Faust, Kafka, InfluxDB or Grafana import belongs here; live agents, replay and the
reports all use the same code.
"""
