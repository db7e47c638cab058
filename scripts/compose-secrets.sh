#!/usr/bin/env bash
# The one-shot `secrets` service of docker-compose.yml. On the stack's first start it makes, in three
# volumes (each mounted only where it is needed):
#   kafka:    a PKCS12 keystore with the broker's TLS key and certificate (signed by a CA made here, valid
#             for the names kafka and localhost), its password, and the JAAS file with reghub's SASL login
#   reghub:   the CA certificate, reghub's SASL password and the database URL, named as reghub reads them
#             from REGHUB_SECRETS_DIR (reghub_kafka_sasl_password, reghub_database_url)
#   postgres: the database password (POSTGRES_PASSWORD_FILE)
# Every password is random; the CA key is thrown away. Later starts find the secrets and change nothing
# (`docker compose down -v` removes them with the data they protect).
set -euo pipefail
kafka="${KAFKA_SECRETS:-/secrets/kafka}"
reghub="${REGHUB_SECRETS:-/secrets/reghub}"
postgres="${POSTGRES_SECRETS:-/secrets/postgres}"
reghub_uid="${REGHUB_UID:-10001}"
if [ -s "$reghub/reghub_database_url" ]; then
  echo "secrets exist: nothing to do"
  exit 0
fi
umask 077
mkdir -p "$kafka" "$reghub" "$postgres"
chmod 0755 "$kafka" "$postgres" # entered by the broker's and the database's own users
chown "$reghub_uid:$reghub_uid" "$reghub"
chmod 0700 "$reghub"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
random() { openssl rand -hex 24; }
KEYSTORE_PASSWORD="$(random)"
export KEYSTORE_PASSWORD
sasl_password="$(random)"
db_password="$(random)"

openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes -subj "/CN=reghub compose CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey rsa:3072 -sha256 -nodes -subj "/CN=kafka" \
  -keyout "$work/kafka.key" -out "$work/kafka.csr" 2>/dev/null
cat >"$work/kafka.ext" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:kafka,DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in "$work/kafka.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -days 825 -sha256 -extfile "$work/kafka.ext" -out "$work/kafka.crt" 2>/dev/null
openssl pkcs12 -export -name kafka -in "$work/kafka.crt" -inkey "$work/kafka.key" \
  -certfile "$work/ca.crt" -passout env:KEYSTORE_PASSWORD -out "$kafka/kafka.keystore.p12"
printf '%s' "$KEYSTORE_PASSWORD" >"$kafka/kafka_keystore_password"
cat >"$kafka/kafka_server_jaas.conf" <<JAAS
KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
  user_reghub="$sasl_password";
};
JAAS
# the broker runs as its image's own user: this volume is mounted in the broker only
chmod 0444 "$kafka"/*

printf '%s' "$db_password" >"$postgres/postgres_password"
chmod 0444 "$postgres/postgres_password" # read by the postgres user; mounted in postgres only

cp "$work/ca.crt" "$reghub/ca.crt"
printf '%s' "$sasl_password" >"$reghub/reghub_kafka_sasl_password"
printf '%s' "postgresql+asyncpg://reghub:$db_password@postgres:5432/reghub" >"$reghub/reghub_database_url.new"
mv "$reghub/reghub_database_url.new" "$reghub/reghub_database_url" # last: marks the set complete
chown "$reghub_uid:$reghub_uid" "$reghub"/*
chmod 0400 "$reghub"/*
echo "secrets made: broker certificate for kafka, SASL login for reghub, database password"
