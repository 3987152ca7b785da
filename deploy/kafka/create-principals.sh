#!/bin/bash
# One-shot, after the broker is up: a SCRAM login per party and what each may do.
#   sitepulse-worker    the Faust workers: everything under the "sitepulse" topic and
#                       group prefixes (its inputs, events, dead letters, changelogs)
#   sitepulse-site      sites and the metering platform: produce readings and
#                       investment reports; no Read, so no site sees another's data
#   sitepulse-operator  the sitepulse CLI: registry, stoppages, audit and events out;
#                       events and dead letters in (status, dlq, notify)
# Per-project HMAC signatures (SITEPULSE_SIGNING_KEYS) keep one site from writing as
# another even though all sites share the one producing principal.
set -euo pipefail
for name in KAFKA_ADMIN_PASSWORD KAFKA_WORKER_PASSWORD KAFKA_SITE_PASSWORD KAFKA_OPERATOR_PASSWORD; do
  [ -n "${!name:-}" ] || { echo "set ${name}" >&2; exit 1; }
done
admin=/tmp/create-principals.properties
umask 077
printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="%s";\n' \
  "$KAFKA_ADMIN_PASSWORD" > "$admin"
bin=/opt/kafka/bin
server=(--bootstrap-server kafka:9092 --command-config "$admin")

login() {
  "$bin/kafka-configs.sh" "${server[@]}" --alter --entity-type users --entity-name "$1" --add-config "SCRAM-SHA-512=[password=$2]"
}
allow() {
  "$bin/kafka-acls.sh" "${server[@]}" --add --allow-principal "User:$1" "${@:2}"
}

login sitepulse-worker "$KAFKA_WORKER_PASSWORD"
login sitepulse-site "$KAFKA_SITE_PASSWORD"
login sitepulse-operator "$KAFKA_OPERATOR_PASSWORD"

allow sitepulse-worker --operation All --topic sitepulse --group sitepulse --resource-pattern-type prefixed
allow sitepulse-worker --operation Create --operation Describe --operation DescribeConfigs --cluster

allow sitepulse-site --operation Write --operation Describe --topic sitepulse.power --topic sitepulse.investment

allow sitepulse-operator --operation Write --operation Describe \
  --topic sitepulse.registry --topic sitepulse.stoppages --topic sitepulse.audit --topic sitepulse.events
allow sitepulse-operator --operation Read --operation Describe --topic sitepulse.events --topic sitepulse.dlq
allow sitepulse-operator --operation Read --group sitepulse- --resource-pattern-type prefixed
rm -f "$admin"
