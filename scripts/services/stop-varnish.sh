#!/usr/bin/env bash
# stop-varnish.sh - stop any varnishd a test left behind: only the PIDs the tests recorded under
# $VARNISH_STATE_DIR/pids, and only while their command line still matches 'varnishd'.
#   stop-varnish.sh           stop, keep the state directory
#   stop-varnish.sh --purge   stop and delete the state directory (work dirs included)
set -uo pipefail
STATE=${VARNISH_STATE_DIR:-/var/tmp/glance-test-services/varnish}
exec "$(dirname "${BASH_SOURCE[0]}")/stop-recorded.sh" stop-varnish "$STATE" 'varnishd' '' "$@"
