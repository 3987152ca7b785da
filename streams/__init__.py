"""What crosses the wire: the contract (topics, records, measurements), validation,
the site publisher built on kafka-python, the registry loader and the simulator."""
