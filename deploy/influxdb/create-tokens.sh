#!/bin/bash
# Runs once, after InfluxDB 2.x setup: one token per party, each with only what it needs.
#   worker-write: read and write the sitepulse bucket (it reads back days and facts)
#   grafana-read: read the sitepulse bucket, nothing else
# They go to the influx-tokens volume, mounted read-only by the worker and by Grafana
# alone; the admin token stays with the InfluxDB container's set-up.
set -euo pipefail
out=/run/sitepulse-tokens
mkdir -p "$out"
bucket_id=$(influx bucket list --name "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | cut -f1)
org="${DOCKER_INFLUXDB_INIT_ORG}"
token_of() {  # columns: ID, Description, Token, User Name, User ID, Permissions
  influx auth create --org "$org" --description "$1" "${@:2}" --hide-headers | cut -f3
}
umask 022
token_of sitepulse-worker --read-bucket "$bucket_id" --write-bucket "$bucket_id" > "$out/worker-write"
token_of sitepulse-grafana --read-bucket "$bucket_id" > "$out/grafana-read"
