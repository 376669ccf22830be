#!/usr/bin/env bash
# Runs bench/flows.py on its own database (100,000 contacts, built on the first run), with OCA's automation_oca 18.0
# from PyPI on the addons path: fetched into a cache outside the repository, never a dependency of the module.
source "$(dirname "$0")/../tools/common.sh"

prepare_everything
DB=${MAUTOMATE_FLOWS_DB:-mautomate_flows_bench}
OCA_DIR=$MAUTOMATE_HOME/bench/automation_oca
addons_path=$(odoo_addons_path)
modules=mautomate_marketing
oca_reason=
if [ ! -f "$OCA_DIR/odoo/addons/automation_oca/__manifest__.py" ]; then
    log "fetching automation_oca 18.0 from PyPI into $OCA_DIR"
    rm -rf "$OCA_DIR" && mkdir -p "$OCA_DIR"
    if ! "$ODOO_PYTHON" -m pip install -q --no-deps --target "$OCA_DIR" 'odoo-addon-automation_oca>=18.0,<18.1' >"$OCA_DIR.log" 2>&1; then
        oca_reason="pip could not install odoo-addon-automation_oca 18.0: $(tail -1 "$OCA_DIR.log")"
    fi
fi
if [ -z "$oca_reason" ]; then
    addons_path=$addons_path,$OCA_DIR/odoo/addons
    modules=$modules,automation_oca
fi
installed() { psql -d "$DB" -Atc "select count(*) from ir_module_module where name in ('${modules//,/\',\'}') and state = 'installed'" 2>/dev/null; }
if [ "$(installed)" = "$(tr ',' '\n' <<<"$modules" | wc -l)" ]; then
    log "updating the module on $DB (reusing its data)"
    "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" -u mautomate_marketing --stop-after-init --log-level=warn
elif psql -d "$DB" -Atc "select 1" >/dev/null 2>&1 && [ "$(installed)" != 0 ]; then
    log "installing $modules on $DB (reusing its data)"
    "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" -i "$modules" --stop-after-init --log-level=warn
else
    log "creating benchmark database $DB"
    dropdb --if-exists "$DB"
    "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" -i "$modules" --without-demo=all --stop-after-init --log-level=warn
fi
exec "$ODOO_PYTHON" "$REPO_DIR/bench/flows.py" "$@" --oca-unavailable "$oca_reason" --db "$DB" --addons-path "$addons_path" -- "${ODOO_CMD[@]}"
