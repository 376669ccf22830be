#!/usr/bin/env bash
# Serves the module as production does (2 HTTP workers, cron workers and the gevent process, proxy mode)
# on a fresh database with demo data, on free loopback ports, then checks with tools/smoke.py that
# /websocket upgrades, that a page, a beacon batch, a form and an API event are stored, that a beacon's
# excluded address is the one a proxy forwarded, that the gevent process it started with is alive at the
# end, and that the log has no ERROR. CI runs it after tools/test.sh. Every wait is bounded; the server
# is stopped and the database dropped on any exit.
source "$(dirname "$0")/common.sh"

prepare_everything
addons_path=$(odoo_addons_path)
DB=${MAUTOMATE_SMOKE_DB:-mautomate_smoke_$$}
LOG=${MAUTOMATE_SMOKE_LOG:-$(mktemp --suffix=.log)}
read -r HTTP_PORT GEVENT_PORT HTTP_PORT_2 GEVENT_PORT_2 < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(4)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')
RESULTS=$(mktemp)
SERVER_PIDS=()

stop_servers() {
    local pid
    # Each server runs in its own process group (setsid): SIGTERM stops its workers and gevent process too.
    for pid in "${SERVER_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in "${SERVER_PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
}
cleanup() {
    stop_servers
    dropdb --if-exists --force "$DB" 2>/dev/null || true
    rm -f "$RESULTS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS
log "installing mautomate_marketing with demo data on $DB (log: $LOG)"
timeout 900 "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" --http-port="$HTTP_PORT" -i mautomate_marketing \
    --stop-after-init --log-level=warn >>"$LOG" 2>&1 || die "installing the module failed (see $LOG)"

serve() {  # http port, gevent port, more options
    setsid "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" --http-interface=127.0.0.1 --http-port="$1" \
        --gevent-port="$2" --workers=2 --proxy-mode "${@:3}" >>"$LOG" 2>&1 </dev/null &
    SERVER_PIDS+=($!)
}
log "serving $DB with 2 workers on 127.0.0.1:$HTTP_PORT, the gevent process on 127.0.0.1:$GEVENT_PORT"
serve "$HTTP_PORT" "$GEVENT_PORT"
log "and a second server on the same database: 127.0.0.1:$HTTP_PORT_2 (gevent :$GEVENT_PORT_2, no cron workers)"
serve "$HTTP_PORT_2" "$GEVENT_PORT_2" --max-cron-threads=0

rc=0
"$ODOO_PYTHON" "$REPO_DIR/tools/smoke.py" --db "$DB" --http-port "$HTTP_PORT" --gevent-port "$GEVENT_PORT" \
    --server-pid "${SERVER_PIDS[0]}" --second-http-port "$HTTP_PORT_2" --second-server-pid "${SERVER_PIDS[1]}" \
    --log "$LOG" | tee "$RESULTS" || rc=$?
stop_servers
# Lines logged while stopping count too; the gevent process prints its start-up traceback without a log level.
problems=$(grep -cE '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) |^Traceback ' "$LOG" || true)
if [ "$problems" = 0 ]; then
    echo "PASS  the log has no ERROR, CRITICAL or traceback" | tee -a "$RESULTS"
else
    grep -m 20 -E '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) |^Traceback |^[A-Za-z_.]+(Error|Exception|NotFound): ' "$LOG" | cut -c1-400 >&2
    echo "FAIL  the log has $problems ERROR, CRITICAL or traceback line(s) (see $LOG)" | tee -a "$RESULTS"
fi
passed=$(grep -c '^PASS ' "$RESULTS" || true)
failed=$(grep -c '^FAIL ' "$RESULTS" || true)
[ "$rc" = 0 ] || [ "$failed" != 0 ] || failed=1  # smoke.py itself broke
log "smoke test done in $((SECONDS - started)) s (log: $LOG)"
echo "smoke: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ] || die "smoke test failed"
