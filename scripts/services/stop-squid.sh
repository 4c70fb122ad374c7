#!/usr/bin/env bash
# stop-squid.sh - stop any squid a test left behind: only the PIDs the tests recorded under
# $SQUID_STATE_DIR/pids, and only while their command line still matches 'squid'.
#   stop-squid.sh           stop, keep the state directory
#   stop-squid.sh --purge   stop and delete the state directory (run dirs included)
set -uo pipefail
STATE=${SQUID_STATE_DIR:-/var/tmp/glance-test-services/squid}
exec "$(dirname "${BASH_SOURCE[0]}")/stop-recorded.sh" stop-squid "$STATE" 'squid' '' "$@"
