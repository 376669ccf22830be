#!/usr/bin/env bash
# Runs the whole test suite of mautomate_marketing on a throw-away PostgreSQL database:
# one install of the module, its at_install and post_install tests, browser tours included.
#   tools/test.sh                 lint (ruff, pylint-odoo), then the module's tests (what CI runs)
#   tools/test.sh --odoo-suites   Odoo's own crm, website_crm and mass_mailing tests with the module installed
source "$(dirname "$0")/common.sh"

prepare_everything
addons_path=$(odoo_addons_path)
DB=mautomate_test_$$
LOG=${MAUTOMATE_TEST_LOG:-$(mktemp --suffix=.log)}
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'dropdb --if-exists "$DB" 2>/dev/null || true' EXIT

odoo() { "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" --http-port="$PORT" --stop-after-init --log-level=test "$@" 2>&1 | tee -a "$LOG"; }

rc=0
case "${1:-}" in
    --odoo-suites)
        odoo -i mautomate_marketing || rc=$?
        odoo -u crm,website_crm,mass_mailing --test-enable --test-tags /crm,/website_crm,/mass_mailing || rc=$? ;;
    "")
        run_lint
        odoo -i mautomate_marketing --test-enable --test-tags /mautomate_marketing || rc=$? ;;
    *) die "usage: tools/test.sh [--odoo-suites]" ;;
esac

check_test_log "$LOG"
[ "$rc" = 0 ] || die "Odoo exited with status $rc (see $LOG)"
