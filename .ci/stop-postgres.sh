#!/usr/bin/env bash
# Stop the server started by .ci/start-postgres.sh and delete its data directory.
# Needs AISP_TEST_PG_BIN and AISP_TEST_PGDATA (exported by start-postgres.sh). Idempotent.
set -uo pipefail
[ -n "${AISP_TEST_PGDATA:-}" ] || exit 0
RUN_AS=()
if [ "$(id -u)" = 0 ]; then RUN_AS=(runuser -u postgres --); fi
if [ -n "${AISP_TEST_PG_BIN:-}" ] && [ -s "$AISP_TEST_PGDATA/PG_VERSION" ]; then
  "${RUN_AS[@]}" "$AISP_TEST_PG_BIN/pg_ctl" -D "$AISP_TEST_PGDATA" -w -m fast stop >/dev/null 2>&1 || true
fi
rm -rf "$AISP_TEST_PGDATA"
