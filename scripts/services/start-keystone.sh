#!/usr/bin/env bash
# start-keystone.sh - run a throw-away OpenStack Keystone (identity v3) on 127.0.0.1 for
# integration tests: keystone from PyPI in a venv, sqlite, fernet tokens, served by gunicorn.
#
#   out=$(/path/to/start-keystone.sh) && eval "$out"     # prints only `export VAR=...` lines
#
# What it sets up (all in the state dir): a venv with keystone $KEYSTONE_VERSION and gunicorn
# (pinned by keystone-constraints.txt beside this script), keystone.conf, the sqlite database
# (keystone-manage db_sync, fernet_setup, credential_setup, bootstrap: user `admin` with role
# admin on project `admin` and on the system, roles admin/manager/member/reader/service, the
# identity endpoint), then through the API (keystone-ensure.py), all in domain Default:
#   project service:    user glint (roles service, admin) - the image service's own user, allowed
#                       to validate other users' tokens (GET /v3/auth/tokens)
#   project glint-demo: glint-admin (admin), glint-member (member, reader)
#   project glint-alt:  glint-other (member)
# and an expired token (KEYSTONE_EXPIRED_TOKEN): a second gunicorn on the same database and
# fernet keys with `[token] expiration = 1` issues a token for glint-member and is stopped;
# once it has expired, the main instance must answer 404 to GET /v3/auth/tokens for it.
# Passwords are fixed (test-only): see the exports.
#
# Idempotent: installs only what is missing; if the server it started earlier still answers
# it just prints the exports again. The database persists while the state dir exists
# (stop-keystone.sh --purge deletes it). Stop it with stop-keystone.sh.
#
# Knobs (environment):
#   KEYSTONE_STATE_DIR  state, venv, configs, logs, pid files
#                       (default /var/tmp/glance-test-services/keystone)
#   KEYSTONE_PORT       port (default 18050); KEYSTONE_PORT+1 is used briefly for the expired token
#   KEYSTONE_PYTHON     python for the venv (default /usr/bin/python3, Debian's)
#   KEYSTONE_READY_TIMEOUT seconds to wait for readiness (default 90)
set -euo pipefail

me=start-keystone
log() { printf '%s: %s\n' "$me" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$me" "$*" >&2; exit 1; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${KEYSTONE_STATE_DIR:-/var/tmp/glance-test-services/keystone}
HOST=127.0.0.1
PORT=${KEYSTONE_PORT:-18050}
SHORT_PORT=$((PORT + 1))
PYTHON=${KEYSTONE_PYTHON:-/usr/bin/python3}
READY_TIMEOUT=${KEYSTONE_READY_TIMEOUT:-90}
KEYSTONE_VERSION=30.0.0
GUNICORN_VERSION=27.0.1
URL=http://$HOST:$PORT/v3

ADMIN_PASSWORD=keystone-admin-secret
SERVICE_USER=glint SERVICE_PASSWORD=glint-secret SERVICE_PROJECT=service
ADMIN_USER=glint-admin ADMIN_USER_PASSWORD=glint-admin-secret
MEMBER_USER=glint-member MEMBER_PASSWORD=glint-member-secret
OTHER_USER=glint-other OTHER_PASSWORD=glint-other-secret
DEMO_PROJECT=glint-demo ALT_PROJECT=glint-alt

VENV=$STATE/venv
ETC=$STATE/etc
LOGS=$STATE/logs
PIDS=$STATE/pids
ENV_FILE=$STATE/env.sh

# ---------------------------------------------------------------- helpers
pid_alive() { # $1 = pid file -> success if its recorded gunicorn still runs
    local f=$1 pid cmd
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *gunicorn*keystone_wsgi* ]]
}

stop_pidfile() { # $1 = pid file
    local pid
    if pid_alive "$1"; then
        pid=$(<"$1")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true; }

token_for() { # $1 = base URL (with /v3), $2 user, $3 password, $4 project -> prints a token
    curl -s -D - -o /dev/null --max-time 30 -H 'Content-Type: application/json' \
        -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"'"$2"'","domain":{"id":"default"},"password":"'"$3"'"}}},"scope":{"project":{"name":"'"$4"'","domain":{"id":"default"}}}}}' \
        "$1/auth/tokens" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *//p'
}

ready() { [[ $(http_code "$URL") == 200 ]] && [[ -n $(token_for "$URL" admin "$ADMIN_PASSWORD" admin) ]]; }

# ------------------------------------------------- already running? reuse it
if [[ -s $ENV_FILE ]] && pid_alive "$PIDS/keystone.pid"; then
    if ready; then
        log "already running (state in $STATE)"
        cat "$ENV_FILE"
        exit 0
    fi
    log "the recorded gunicorn is alive but Keystone does not answer; restarting"
fi
stop_pidfile "$PIDS/keystone.pid"
stop_pidfile "$PIDS/keystone-short.pid"
rm -f "$ENV_FILE"

# ---------------------------------------------------------------- install
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    ((EUID == 0)) || die "python3-venv is missing; run as root or: sudo apt-get install -y python3-venv"
    log "installing python3-venv (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends python3-venv >&2 ||
        { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends python3-venv >&2; } ||
        die "apt-get install python3-venv failed"
fi
mkdir -p "$STATE" "$ETC" "$LOGS" "$PIDS"
want="keystone==$KEYSTONE_VERSION gunicorn==$GUNICORN_VERSION $(sha256sum "$HERE/keystone-constraints.txt" | cut -c1-16)"
if [[ ! -x $VENV/bin/gunicorn || "$(cat "$VENV/.installed" 2>/dev/null)" != "$want" ]]; then
    log "installing keystone==$KEYSTONE_VERSION and gunicorn==$GUNICORN_VERSION into $VENV (pip; about a minute)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "could not create the venv $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -c "$HERE/keystone-constraints.txt" \
        "keystone==$KEYSTONE_VERSION" "gunicorn==$GUNICORN_VERSION" >&2 ||
        die "pip could not install keystone==$KEYSTONE_VERSION (see above)"
    echo "$want" >"$VENV/.installed"
fi

for p in "$PORT" "$SHORT_PORT"; do
    port_busy "$p" && die "port $HOST:$p is already in use by another process; set KEYSTONE_PORT to another port"
done

# ---------------------------------------------------------------- configure
conf() { # $1 = token lifetime in seconds
    cat <<EOF
[DEFAULT]
use_stderr = true
debug = false

[database]
connection = sqlite:///$STATE/keystone.db

[token]
provider = fernet
expiration = $1

[fernet_tokens]
key_repository = $STATE/fernet-keys

[fernet_receipts]
key_repository = $STATE/fernet-keys

[credential]
key_repository = $STATE/credential-keys

[identity]
# bcrypt's fewest rounds: a password check costs ~1 ms instead of ~250 ms
password_hash_rounds = 4

[cache]
enabled = false
EOF
}
conf 3600 >"$ETC/keystone.conf"
conf 1 >"$ETC/keystone-short.conf"
# oslo.config would parse gunicorn's command line as keystone's: hide it.
cat >"$ETC/keystone_wsgi.py" <<'EOF'
import sys
sys.argv = sys.argv[:1]
from keystone.server.wsgi import initialize_public_application
application = initialize_public_application()
EOF

manage() { "$VENV/bin/keystone-manage" --config-file "$ETC/keystone.conf" "$@" >>"$LOGS/keystone-manage.log" 2>&1 ||
    { tail -n 20 "$LOGS/keystone-manage.log" >&2; die "keystone-manage $1 failed (log: $LOGS/keystone-manage.log)"; }; }
if [[ ! -e $STATE/bootstrapped ]]; then
    log "creating the database and keys (keystone-manage)"
    rm -f "$STATE/keystone.db" "$STATE/expired-token"
    rm -rf "$STATE/fernet-keys" "$STATE/credential-keys"
    manage db_sync
    manage fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    manage credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    manage bootstrap --bootstrap-password "$ADMIN_PASSWORD" --bootstrap-username admin \
        --bootstrap-project-name admin --bootstrap-region-id RegionOne \
        --bootstrap-admin-url "$URL" --bootstrap-internal-url "$URL" --bootstrap-public-url "$URL"
    touch "$STATE/bootstrapped"
fi

# ---------------------------------------------------------------- start
launch() { # $1 = name, $2 = config file, $3 = port
    OS_KEYSTONE_CONFIG_FILES=$2 nohup setsid "$VENV/bin/gunicorn" --chdir "$ETC" \
        --bind "$HOST:$3" --workers 1 --threads 8 --worker-class gthread --timeout 120 \
        --no-control-socket --access-logfile - keystone_wsgi:application \
        >>"$LOGS/$1.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$1.pid"
}

fail() {
    [[ -s $LOGS/keystone.log ]] && { log "--- last lines of $LOGS/keystone.log"; tail -n 20 "$LOGS/keystone.log" >&2; }
    stop_pidfile "$PIDS/keystone.pid"
    stop_pidfile "$PIDS/keystone-short.pid"
    die "$*"
}

wait_ready() { # $1 = name, $2 = URL
    local deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        # (not pid_alive: until nohup has exec'd gunicorn the command line is this script's)
        kill -0 "$(<"$PIDS/$1.pid")" 2>/dev/null || fail "$1 (gunicorn) exited during start-up (log: $LOGS/$1.log)"
        [[ $(http_code "$2") == 200 ]] && return 0
        sleep 0.3
    done
    fail "$1 did not answer GET $2 within ${READY_TIMEOUT}s"
}

t0=$(date +%s.%N)
launch keystone "$ETC/keystone.conf" "$PORT"
wait_ready keystone "$URL"
[[ -n $(token_for "$URL" admin "$ADMIN_PASSWORD" admin) ]] || fail "the bootstrap admin cannot get a token"

# ---------------------------------------------------------------- users
ids=$("$VENV/bin/python" "$HERE/keystone-ensure.py" "$URL" "$ADMIN_PASSWORD" <<EOF
project $SERVICE_PROJECT
project $DEMO_PROJECT
project $ALT_PROJECT
user $SERVICE_USER $SERVICE_PASSWORD $SERVICE_PROJECT service admin
user $ADMIN_USER $ADMIN_USER_PASSWORD $DEMO_PROJECT admin
user $MEMBER_USER $MEMBER_PASSWORD $DEMO_PROJECT member reader
user $OTHER_USER $OTHER_PASSWORD $ALT_PROJECT member
EOF
) || fail "could not create the projects and users"
id_of() { awk -v k="$1" -v n="$2" '$1 == k && $2 == n { print $3 }' <<<"$ids"; }

# ---------------------------------------------------------------- expired token
EXPIRED_URL=http://$HOST:$SHORT_PORT/v3
expired=$(cat "$STATE/expired-token" 2>/dev/null || true)
if [[ -n $expired && $(http_code -H "X-Auth-Token: $(token_for "$URL" "$SERVICE_USER" "$SERVICE_PASSWORD" "$SERVICE_PROJECT")" \
        -H "X-Subject-Token: $expired" "$URL/auth/tokens") != 404 ]]; then
    expired=""
fi
if [[ -z $expired ]]; then
    log "making an expired token (a second Keystone with 1 s tokens on port $SHORT_PORT)"
    launch keystone-short "$ETC/keystone-short.conf" "$SHORT_PORT"
    wait_ready keystone-short "$EXPIRED_URL"
    expired=$(token_for "$EXPIRED_URL" "$MEMBER_USER" "$MEMBER_PASSWORD" "$DEMO_PROJECT")
    stop_pidfile "$PIDS/keystone-short.pid"
    [[ -n $expired ]] || fail "the short-lived Keystone issued no token"
    sleep 2
    svc=$(token_for "$URL" "$SERVICE_USER" "$SERVICE_PASSWORD" "$SERVICE_PROJECT")
    [[ -n $svc ]] || fail "the service user $SERVICE_USER cannot get a token"
    code=$(http_code -H "X-Auth-Token: $svc" -H "X-Subject-Token: $expired" "$URL/auth/tokens")
    [[ $code == 404 ]] || fail "GET /v3/auth/tokens for the expired token answered $code, not 404"
    echo "$expired" >"$STATE/expired-token"
fi

cat >"$ENV_FILE" <<EOF
export KEYSTONE_URL=$URL
export KEYSTONE_STATE_DIR=$STATE
export KEYSTONE_ADMIN_USER=admin
export KEYSTONE_ADMIN_PASSWORD=$ADMIN_PASSWORD
export KEYSTONE_ADMIN_PROJECT=admin
export KEYSTONE_DOMAIN=Default
export KEYSTONE_SERVICE_USER=$SERVICE_USER
export KEYSTONE_SERVICE_PASSWORD=$SERVICE_PASSWORD
export KEYSTONE_SERVICE_PROJECT=$SERVICE_PROJECT
export KEYSTONE_SERVICE_PROJECT_ID=$(id_of project "$SERVICE_PROJECT")
export KEYSTONE_DEMO_PROJECT=$DEMO_PROJECT
export KEYSTONE_DEMO_PROJECT_ID=$(id_of project "$DEMO_PROJECT")
export KEYSTONE_ALT_PROJECT=$ALT_PROJECT
export KEYSTONE_ALT_PROJECT_ID=$(id_of project "$ALT_PROJECT")
export KEYSTONE_DEMO_ADMIN_USER=$ADMIN_USER
export KEYSTONE_DEMO_ADMIN_PASSWORD=$ADMIN_USER_PASSWORD
export KEYSTONE_DEMO_ADMIN_USER_ID=$(id_of user "$ADMIN_USER")
export KEYSTONE_DEMO_MEMBER_USER=$MEMBER_USER
export KEYSTONE_DEMO_MEMBER_PASSWORD=$MEMBER_PASSWORD
export KEYSTONE_DEMO_MEMBER_USER_ID=$(id_of user "$MEMBER_USER")
export KEYSTONE_ALT_MEMBER_USER=$OTHER_USER
export KEYSTONE_ALT_MEMBER_PASSWORD=$OTHER_PASSWORD
export KEYSTONE_ALT_MEMBER_USER_ID=$(id_of user "$OTHER_USER")
export KEYSTONE_EXPIRED_TOKEN=$expired
EOF
log "ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s (state in $STATE, logs in $LOGS)"
cat "$ENV_FILE"
