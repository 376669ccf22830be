# Shared by setup.sh, test.sh and .ci/run: finds Odoo 18, prepares Python, PostgreSQL
# and Chromium. Sourced, not executed.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MAUTOMATE_HOME=${MAUTOMATE_HOME:-$HOME/.local/share/mautomate_marketing}
ODOO_LINK=$MAUTOMATE_HOME/odoo      # an Odoo 18 tree, or a link to the one in ODOO_SRC
VENV=$MAUTOMATE_HOME/venv
ODOO_UPSTREAM=https://github.com/odoo/odoo.git
HOW_TO_PROVIDE="Odoo 18 not found: set ODOO_SRC=/path/to/odoo-18.0 (a checkout of $ODOO_UPSTREAM, branch 18.0), make 'import odoo' (18.0) work for python3, or run tools/setup.sh once to download it into $ODOO_LINK"

log() { printf '[mautomate] %s\n' "$*" >&2; }
die() { printf '[mautomate] %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

is_odoo18_tree() { [ -f "$1/odoo/release.py" ] && grep -q "^version_info = (18, 0" "$1/odoo/release.py"; }

ensure_system_packages() {
    local missing=()
    command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
    command -v pg_config >/dev/null || missing+=(libpq-dev)
    [ -f /usr/include/ldap.h ] || missing+=(libldap2-dev)
    [ -f /usr/include/sasl/sasl.h ] || missing+=(libsasl2-dev)
    command -v chromium >/dev/null || command -v google-chrome >/dev/null || missing+=(chromium)
    [ ${#missing[@]} = 0 ] && return 0
    command -v apt-get >/dev/null || die "missing system packages (${missing[*]}) and no apt-get to install them"
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_postgres() {
    if ! pg_isready -q 2>/dev/null; then
        local cluster
        cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1" "$2}')
        [ -n "$cluster" ] || die "no PostgreSQL cluster: create one with pg_createcluster"
        log "starting PostgreSQL cluster $cluster"
        # shellcheck disable=SC2086
        as_root pg_ctlcluster --skip-systemctl-redirect $cluster start
        for _ in $(seq 30); do pg_isready -q && break; sleep 1; done
    fi
    local me; me=$(id -un)
    if ! psql -d postgres -Atc 'select 1' >/dev/null 2>&1; then
        log "creating PostgreSQL role $me"
        as_root runuser -u postgres -- createuser --superuser "$me"
    fi
}

# Sets ODOO_PYTHON and ODOO_CMD (an array running odoo-bin). With "download", fetches
# upstream Odoo 18 when none is found; without, fails with one line saying how.
find_odoo() {
    local mode=${1:-}
    if [ -n "${ODOO_SRC:-}" ]; then
        is_odoo18_tree "$ODOO_SRC" || die "ODOO_SRC=$ODOO_SRC is not an Odoo 18.0 source tree"
        mkdir -p "$MAUTOMATE_HOME"
        [ "$(readlink -f "$ODOO_LINK")" = "$(readlink -f "$ODOO_SRC")" ] || ln -sfn "$(readlink -f "$ODOO_SRC")" "$ODOO_LINK"
    fi
    if ! is_odoo18_tree "$ODOO_LINK" && [ -z "${ODOO_SRC:-}" ]; then
        if python3 -c 'import odoo.release as r, sys; sys.exit(r.version_info[:2] != (18, 0))' 2>/dev/null; then
            ODOO_PYTHON=$(command -v python3)
            ODOO_CMD=("$ODOO_PYTHON" -m odoo)
            log "using the importable Odoo 18 of $ODOO_PYTHON"
            return 0
        fi
        [ "$mode" = download ] || die "$HOW_TO_PROVIDE"
        log "downloading Odoo 18.0 from $ODOO_UPSTREAM into $ODOO_LINK"
        mkdir -p "$MAUTOMATE_HOME"
        git clone --quiet --depth 1 --branch 18.0 "$ODOO_UPSTREAM" "$ODOO_LINK" || die "$HOW_TO_PROVIDE"
    fi
    ensure_venv "$ODOO_LINK/requirements.txt"
    ODOO_PYTHON=$VENV/bin/python
    ODOO_CMD=("$ODOO_PYTHON" "$ODOO_LINK/odoo-bin")
    log "using Odoo 18 from $(readlink -f "$ODOO_LINK")"
}

# Beyond Odoo's pinned requirements: browser tours need websocket-client; phone formatting (as in Odoo's Debian package) phonenumbers;
# the predictive probability scikit-learn (the module's external dependency; it brings numpy and scipy);
# the linters Odoo's community runs, pinned so that a new release cannot break CI.
# gevent 22.10.2 (Odoo's pin for Python 3.11) loads its plugins through setuptools 65's pkg_resources, which
# keys a dist-info directory by its name: newer zope.* wheels name it zope_interface-*, so the requirement
# zope.interface is "not found" and the gevent process (/websocket) exits at start; these releases keep the dot.
PROJECT_REQUIREMENTS=(websocket-client phonenumbers scikit-learn==1.9.1 ruff==0.17.6 pylint-odoo==10.0.12
                      zope.interface==6.1 zope.event==5.0)

ensure_venv() {
    local requirements=$1 stamp=$VENV/.requirements.sha1 want
    want=$( (cat "$requirements"; echo "${PROJECT_REQUIREMENTS[*]}") | sha1sum | cut -d' ' -f1)
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
    log "installing Odoo's Python requirements into $VENV (a few minutes, once)"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    # Odoo 18's pinned packages build on Python 3.11 only with setuptools<70 in pip's build isolation.
    PIP_CONSTRAINT=$REPO_DIR/tools/build-constraints.txt "$VENV/bin/pip" install -q -r "$requirements" "${PROJECT_REQUIREMENTS[@]}"
    echo "$want" > "$stamp"
}

ensure_python_packages() {
    "$ODOO_PYTHON" -c 'import websocket, phonenumbers, sklearn, ruff, pylint_odoo' 2>/dev/null || "$ODOO_PYTHON" -m pip install -q "${PROJECT_REQUIREMENTS[@]}"
}

# ruff (ruff.toml) and pylint-odoo (.pylintrc) on the repository; fails on any finding.
run_lint() {
    log "lint: ruff and pylint-odoo"
    (cd "$REPO_DIR" && "$ODOO_PYTHON" -m ruff check --no-cache . && "$ODOO_PYTHON" -m pylint --rcfile=.pylintrc mautomate_marketing) \
        || die "lint failed: fix the findings above"
}

prepare_everything() {
    ensure_system_packages
    ensure_postgres
    find_odoo "${1:-}"
    ensure_python_packages
}

odoo_addons_path() {
    local paths=()
    [ -z "${ODOO_LINK:-}" ] || [ ! -d "$ODOO_LINK/addons" ] || [ "${ODOO_CMD[1]}" = -m ] || paths+=("$(readlink -f "$ODOO_LINK")/addons")
    paths+=("$REPO_DIR")
    (IFS=,; echo "${paths[*]}")
}

# Odoo logs a skipped test as "<test module>: skipped <test> : <reason>"; tours skip without Chrome or websocket-client.
SKIP_PATTERN=': skipped [^ ]+ : |websocket-client module is not installed|Chrome executable not found'

# Fails on any failed, errored or skipped test and on any ERROR/CRITICAL in the Odoo log,
# then prints the closing summary line.
check_test_log() {
    local log=$1 failed=0 errors=0 total=0 line skipped
    while read -r line; do
        set -- $line
        failed=$((failed + $1)); errors=$((errors + $3)); total=$((total + $6))
    done < <(grep -oE '[0-9]+ failed, [0-9]+ error\(s\) of [0-9]+ tests' "$log")
    skipped=$(grep -cE "$SKIP_PATTERN" "$log" || true)
    [ "$total" -gt 0 ] || die "no test ran (see $log)"
    [ "$skipped" = 0 ] || { grep -m 20 -E "$SKIP_PATTERN" "$log" | cut -c1-300 >&2; die "$skipped test(s) were skipped (see $log)"; }
    echo "odoo tests: $((total - failed - errors)) passed, $((failed + errors)) failed"
    check_clean_log "$log"
    [ $((failed + errors)) = 0 ] || die "tests failed (see $log)"
}

# Fails on any ERROR/CRITICAL line in the Odoo log.
check_clean_log() {
    local log=$1 problems
    problems=$(grep -cE '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) ' "$log" || true)
    [ "$problems" = 0 ] || { grep -m 20 -E '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) ' "$log" | cut -c1-400 >&2; die "the Odoo log has $problems ERROR/CRITICAL line(s) (see $log)"; }
}
