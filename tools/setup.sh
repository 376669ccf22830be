#!/usr/bin/env bash
# Installs everything (system packages, PostgreSQL, Odoo 18 and its Python packages), then
# serves Odoo with mautomate_marketing and its demo data on http://localhost:8069 as production does:
# 2 HTTP workers, cron workers and the gevent process for /websocket (port 8072).
source "$(dirname "$0")/common.sh"

DB=${MAUTOMATE_DB:-mautomate}
PORT=${MAUTOMATE_PORT:-8069}

prepare_everything download
addons_path=$(odoo_addons_path)
if ! psql -d "$DB" -Atc 'select 1 from ir_module_module where name = $$mautomate_marketing$$ and state = $$installed$$' 2>/dev/null | grep -q 1; then
    log "creating database $DB with mautomate_marketing and its demo data"
    "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" -i mautomate_marketing --stop-after-init --log-level=warn
fi
GEVENT_PORT=${MAUTOMATE_GEVENT_PORT:-8072}
WORKERS=${MAUTOMATE_WORKERS:-2}
log "Odoo serves $DB on http://localhost:$PORT (log in as admin / admin) with $WORKERS workers, /websocket on port $GEVENT_PORT; Ctrl-C stops it"
exec "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" --http-port="$PORT" --gevent-port="$GEVENT_PORT" \
    --workers="$WORKERS" "$@"
