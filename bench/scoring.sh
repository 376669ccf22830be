#!/usr/bin/env bash
# Runs bench/scoring.py on its own database (100,000 contacts, 2,000,000 events, built on the first run: a few minutes).
source "$(dirname "$0")/../tools/common.sh"

prepare_everything
DB=${MAUTOMATE_SCORING_DB:-mautomate_scoring_bench}
addons_path=$(odoo_addons_path)
if psql -d "$DB" -Atc "select 1 from ir_module_module where name = 'mautomate_marketing' and state = 'installed'" 2>/dev/null | grep -q 1; then
    log "updating the module on $DB (reusing its data)"
    "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" -u mautomate_marketing --stop-after-init --log-level=warn
else
    log "creating benchmark database $DB"
    dropdb --if-exists "$DB"
    "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" -i mautomate_marketing --without-demo=all --stop-after-init --log-level=warn
fi
exec "$ODOO_PYTHON" "$REPO_DIR/bench/scoring.py" "$@" --db "$DB" --addons-path "$addons_path" -- "${ODOO_CMD[@]}"
