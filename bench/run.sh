#!/usr/bin/env bash
# Runs bench/tracking.py against a real Odoo server (2 workers) on a benchmark database.
source "$(dirname "$0")/../tools/common.sh"

prepare_everything
DB=${MAUTOMATE_BENCH_DB:-mautomate_bench}
addons_path=$(odoo_addons_path)
if ! psql -d "$DB" -Atc "select 1 from ir_module_module where name = 'mautomate_marketing' and state = 'installed'" 2>/dev/null | grep -q 1; then
    log "creating benchmark database $DB"
    dropdb --if-exists "$DB"
    "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" -i mautomate_marketing --without-demo=all --stop-after-init --log-level=warn
else
    # The database outlives the code: bring the module's tables up to it.
    log "updating the module on $DB"
    "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" -u mautomate_marketing --stop-after-init --log-level=warn
fi
exec "$ODOO_PYTHON" "$REPO_DIR/bench/tracking.py" --db "$DB" --addons-path "$addons_path" -- "${ODOO_CMD[@]}"
