#!/usr/bin/env bash
# Keeps the translations of mautomate_marketing current with its code:
#   1. installs the module (without demo data) on a throw-away PostgreSQL database and
#      exports its template, mautomate_marketing/i18n/mautomate_marketing.pot: fields, selections,
#      views, menus, actions, _() / env._() strings of Python and _t() / template texts of static/src;
#   2. merges that template into every mautomate_marketing/i18n/<lang>.po (sv.po, da.po, ...):
#      new strings come in untranslated, removed ones go away, translations of the others stay;
#   3. reports each file's counts and lists the strings left to translate.
#   tools/i18n.sh           as above
#   tools/i18n.sh --check   same, then fails if a .po has an untranslated or fuzzy string (for CI)
# The .pot is rewritten only when its strings change, not for a new creation date.
source "$(dirname "$0")/common.sh"

check=0
case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    *) die "usage: tools/i18n.sh [--check]" ;;
esac
for tool in msgmerge msgfmt msgattrib; do
    command -v "$tool" >/dev/null || die "$tool not found: install gettext (apt-get install gettext)"
done

prepare_everything
addons_path=$(odoo_addons_path)
I18N_DIR=$REPO_DIR/mautomate_marketing/i18n
POT=$I18N_DIR/mautomate_marketing.pot
DB=${MAUTOMATE_I18N_DB:-i18n_mautomate_$$}
PORT=${MAUTOMATE_I18N_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
WORK=$(mktemp -d)
LOG=$WORK/odoo.log
trap 'dropdb --if-exists "$DB" 2>/dev/null || true; rm -rf "$WORK" "$HOME/.local/share/Odoo/filestore/$DB"' EXIT

odoo() {
    "${ODOO_CMD[@]}" -d "$DB" --addons-path="$addons_path" --http-port="$PORT" --stop-after-init --log-level=warn "$@" >>"$LOG" 2>&1 \
        || { tail -n 40 "$LOG" >&2; die "Odoo failed (odoo-bin $*), log above"; }
}

log "installing mautomate_marketing without demo data on $DB"
dropdb --if-exists "$DB" 2>/dev/null || true
odoo -i mautomate_marketing --without-demo=all
log "exporting the template"
odoo --i18n-export="$WORK/new.pot" --modules=mautomate_marketing
[ -s "$WORK/new.pot" ] || die "Odoo exported no template (see $LOG)"
grep -q '^#\. module: mautomate_marketing' "$WORK/new.pot" || die "the exported template holds no string of mautomate_marketing"

mkdir -p "$I18N_DIR"
strip_dates() { grep -vE '^"(POT-Creation|PO-Revision)-Date: ' "$1"; }
if [ -f "$POT" ] && cmp -s <(strip_dates "$POT") <(strip_dates "$WORK/new.pot"); then
    log "template unchanged: $POT"
else
    cp "$WORK/new.pot" "$POT"
    log "template updated: $POT"
fi
log "template: $(grep -c '^msgid ' "$POT" | awk '{print $1 - 1}') strings"

shopt -s nullglob
po_files=("$I18N_DIR"/*.po)
[ ${#po_files[@]} -gt 0 ] || log "no .po file in $I18N_DIR yet: copy the template to <lang>.po and translate it"
incomplete=0
for po in "${po_files[@]}"; do
    msgmerge --quiet --update --no-fuzzy-matching --backup=none "$po" "$POT"
    # Odoo's own .po files keep no obsolete (#~) entries: strings gone from the code go away.
    msgattrib --no-obsolete --output-file="$po" "$po"
    msgfmt --check -o /dev/null "$po" || die "$po does not compile (msgfmt --check)"
    stats=$(LC_ALL=C msgfmt --statistics -o /dev/null "$po" 2>&1)
    echo "$(basename "$po"): $stats"
    untranslated=$(grep -oE '[0-9]+ untranslated' <<<"$stats" | cut -d' ' -f1 || true)
    fuzzy=$(grep -oE '[0-9]+ fuzzy' <<<"$stats" | cut -d' ' -f1 || true)
    if [ $((${untranslated:-0} + ${fuzzy:-0})) -gt 0 ]; then
        incomplete=1
        echo "  to translate in $(basename "$po"):"
        # every untranslated or fuzzy msgid but the header's
        { msgattrib --untranslated --no-obsolete --no-location --no-wrap "$po"
          msgattrib --only-fuzzy --no-obsolete --no-location --no-wrap --clear-fuzzy "$po"; } \
            | awk '/^msgid /{id=substr($0, 7); next}
                   /^"/ && id != ""{id=substr(id, 1, length(id) - 1) substr($0, 2); next}
                   /^msgstr/{if (id != "\"\"") print "    " id; id=""}'
    fi
done

[ "$check" = 0 ] || [ "$incomplete" = 0 ] || die "some translations are missing (see above)"
