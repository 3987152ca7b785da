#!/bin/bash
# Runs once, after InfluxDB 2.x setup: gives the bucket one-year shard groups (the boards
# read a year of daily points; see SHARD_DURATION in streams/contract.py) and maps it to
# an InfluxQL database and retention policy of the same name, so /query (InfluxQL) reads
# what sitepulse writes.
set -euo pipefail
bucket_id=$(influx bucket list --name "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | cut -f1)
influx bucket update --id "${bucket_id}" --shard-group-duration 52w
influx v1 dbrp create --bucket-id "${bucket_id}" --db "${DOCKER_INFLUXDB_INIT_BUCKET}" --rp autogen --default
