#!/usr/bin/env bash
# Runs the whole test suite of mautomate_marketing on a throw-away PostgreSQL database:
# one install of the module, its at_install and post_install tests, browser tours included.
#   tools/test.sh                 lint (ruff, pylint-odoo), then the module's tests (what CI runs)
#   tools/test.sh --odoo-suites   Odoo's own crm, website_crm and mass_mailing tests with the module installed
#   tools/test.sh --upgrade [REF] the module as it was at git ref REF (default: the previous release, the newest commit
#                                 whose manifest version differs from this tree's) installed with demo data and data
#                                 made by its code, then upgraded to this tree: every event, score award, flow,
#                                 participant, trace, form, consent, API key and score rule is kept
source "$(dirname "$0")/common.sh"

prepare_everything
addons_path=$(odoo_addons_path)
DB=mautomate_test_$$
LOG=${MAUTOMATE_TEST_LOG:-$(mktemp --suffix=.log)}
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
OLD_DIR=$(mktemp -d)
trap 'dropdb --if-exists "$DB" 2>/dev/null || true; rm -rf "$OLD_DIR"' EXIT

odoo() { "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" --http-port="$PORT" --stop-after-init --log-level=test "$@" 2>&1 | tee -a "$LOG"; }

MANIFEST=mautomate_marketing/__manifest__.py
manifest_version() { python3 -c 'import ast, sys; print(ast.literal_eval(sys.stdin.read())["version"])'; }

# The newest commit whose manifest version is not this tree's: the parent of the commit that set this version.
previous_release() {
    local current commit
    current=$(manifest_version < "$REPO_DIR/$MANIFEST")
    for commit in HEAD $(git -C "$REPO_DIR" log --format=%H^ -G"'version'" -- "$MANIFEST"); do
        git -C "$REPO_DIR" cat-file -e "$commit:$MANIFEST" 2>/dev/null || continue
        if [ "$(git -C "$REPO_DIR" show "$commit:$MANIFEST" | manifest_version)" != "$current" ]; then
            git -C "$REPO_DIR" rev-parse --short "$commit"
            return
        fi
    done
    die "no commit has a version other than $current (a shallow clone? fetch the history, or give REF)"
}

# Installs the addon of REF with demo data on a new database, adds data through its code (tools/upgrade_seed.py),
# upgrades it with this tree and compares tools/upgrade_snapshot.sql before and after.
upgrade_test() {
    local ref=$1 new_path=$addons_path old_version new_version before after installed empty changed
    git -C "$REPO_DIR" rev-parse -q --verify "$ref^{commit}" >/dev/null || die "$ref: no such commit"
    git -C "$REPO_DIR" archive "$ref" mautomate_marketing | tar -x -C "$OLD_DIR"
    old_version=$(manifest_version < "$OLD_DIR/$MANIFEST")
    new_version=$(manifest_version < "$REPO_DIR/$MANIFEST")
    [ "$old_version" != "$new_version" ] || log "$ref has this tree's version $new_version: no migration script runs"
    log "upgrade: mautomate_marketing $old_version ($ref) to $new_version (this tree)"
    addons_path=${new_path%"$REPO_DIR"}$OLD_DIR
    odoo -i mautomate_marketing || die "the install of $ref failed (see $LOG)"
    "${ODOO_CMD[@]}" shell -d "$DB" --addons-path="$addons_path" < "$REPO_DIR/tools/upgrade_seed.py" 2>&1 | tee -a "$LOG" \
        || die "making data with $ref's code failed (see $LOG)"
    before=$(psql -X -A -t -F ' ' -v ON_ERROR_STOP=1 -d "$DB" -f "$REPO_DIR/tools/upgrade_snapshot.sql")
    empty=$(awk '$2 == 0 {print $1}' <<< "$before" | paste -sd ' ')
    [ -z "$empty" ] || die "no $empty before the upgrade: nothing to compare (see $LOG)"
    addons_path=$new_path
    odoo -u mautomate_marketing || die "the upgrade failed (see $LOG)"
    after=$(psql -X -A -t -F ' ' -v ON_ERROR_STOP=1 -d "$DB" -f "$REPO_DIR/tools/upgrade_snapshot.sql")
    installed=$(psql -X -A -t -d "$DB" -c "SELECT latest_version FROM ir_module_module WHERE name = 'mautomate_marketing' AND state = 'installed'")
    check_clean_log "$LOG"
    changed=$(join <(sort <<< "$before") <(sort <<< "$after") -a 1 | awk '$2 != $4 || $3 != $5 {print $1 " (" $2 " rows before, " ($4 == "" ? "none" : $4) " after" ($2 == $4 ? ", fields changed" : "") ")"}' | paste -sd ',' | sed 's/,/, /g')
    [ -z "$changed" ] || die "the upgrade from $ref changed: $changed"
    [ "$installed" = "$new_version" ] || die "after the upgrade the module's version is '$installed', not $new_version"
    echo "upgrade from $ref ($old_version) to $new_version: kept $(awk '{print $2 " " $1}' <<< "$before" | paste -sd ',' | sed 's/,/, /g')"
}

rc=0
case "${1:-}" in
    --odoo-suites)
        odoo -i mautomate_marketing || rc=$?
        odoo -u crm,website_crm,mass_mailing --test-enable --test-tags /crm,/website_crm,/mass_mailing || rc=$? ;;
    "")
        run_lint
        odoo -i mautomate_marketing --test-enable --test-tags /mautomate_marketing || rc=$? ;;
    --upgrade)
        ref=${2:-}
        [ -n "$ref" ] || ref=$(previous_release)
        upgrade_test "$ref"
        exit 0 ;;
    *) die "usage: tools/test.sh [--odoo-suites | --upgrade [REF]]" ;;
esac

check_test_log "$LOG"
[ "$rc" = 0 ] || die "Odoo exited with status $rc (see $LOG)"
