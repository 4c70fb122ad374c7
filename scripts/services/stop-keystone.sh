#!/usr/bin/env bash
# stop-keystone.sh - stop what start-keystone.sh started: only the processes whose PIDs
# it recorded under $KEYSTONE_STATE_DIR/pids (and only while they still look like ours:
# command line matching 'gunicorn').
#   stop-keystone.sh           stop, keep the state directory
#   stop-keystone.sh --purge   stop and delete the state directory
set -uo pipefail
STATE=${KEYSTONE_STATE_DIR:-/var/tmp/glance-test-services/keystone}
exec "$(dirname "${BASH_SOURCE[0]}")/stop-recorded.sh" stop-keystone "$STATE" 'gunicorn' \
    'keystone-short keystone' "$@"
