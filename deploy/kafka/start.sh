#!/bin/bash
# Starts the broker. On the first start the storage is formatted with the admin's SCRAM
# credential (KRaft keeps credentials in its metadata log, so the admin must exist before
# anyone can log in to create the others).
set -euo pipefail
: "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD}"
: "${KAFKA_CLUSTER_ID:?set KAFKA_CLUSTER_ID}"
config=/tmp/server.properties
cp /opt/sitepulse-kafka/server.properties "$config"
login="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"${KAFKA_ADMIN_PASSWORD}\";"
echo "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=${login}" >> "$config"
# The admin's client settings, for the health check and create-principals.sh.
printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=%s\n' "$login" > /tmp/admin.properties
chmod 600 "$config" /tmp/admin.properties
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "$KAFKA_CLUSTER_ID" --config "$config" \
  --add-scram "SCRAM-SHA-512=[name=admin,password=${KAFKA_ADMIN_PASSWORD}]"
exec /opt/kafka/bin/kafka-server-start.sh "$config"
