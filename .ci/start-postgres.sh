#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the store tests and print its variables.
# Usage: eval "$(.ci/start-postgres.sh)"   -> exports AISP_TEST_POSTGRES_URL, AISP_TEST_PG_BIN,
#                                             AISP_TEST_PGDATA, AISP_TEST_PG_PORT
# AISP_TEST_PG_PORT (default: a free port) and AISP_TEST_PGDATA (default: a new temp dir) choose
# where. Stop it and delete its data with .ci/stop-postgres.sh (same variables).
set -euo pipefail
PORT=${AISP_TEST_PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$PG_BIN/initdb" ] || { echo "echo 'postgres binaries not found' >&2"; exit 1; }
PGDATA=${AISP_TEST_PGDATA:-$(mktemp -d /tmp/aisp-pg-XXXXXX)}
RUN_AS=()
if [ "$(id -u)" = 0 ]; then RUN_AS=(runuser -u postgres --); fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"; [ "$(id -u)" = 0 ] && chown postgres: "$PGDATA"
  "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U aisp --auth=trust -E UTF8 >/dev/null
fi
if ! "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA" -w -l "$PGDATA/server.log" \
    -o "-h 127.0.0.1 -p $PORT -k /tmp" start >/dev/null
fi
"${RUN_AS[@]}" "$PG_BIN/psql" -h 127.0.0.1 -p "$PORT" -U aisp -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname='aisp_test'" | grep -q 1 || \
  "${RUN_AS[@]}" "$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U aisp aisp_test
echo "export AISP_TEST_POSTGRES_URL=postgresql+psycopg://aisp@127.0.0.1:$PORT/aisp_test"
echo "export AISP_TEST_PG_BIN=$PG_BIN AISP_TEST_PGDATA=$PGDATA AISP_TEST_PG_PORT=$PORT"
