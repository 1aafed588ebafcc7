#!/usr/bin/env bash
# The Debian tools the test suite drives besides Python: systemd-analyze (unit file checks) and
# chromium (the dashboard's browser test, driven by Playwright).
# Installs what is missing when it can (root + apt); otherwise says so, and the tests that need
# a missing tool are skipped with that reason.
set -uo pipefail
need=()
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing ${need[*]} (needs root and apt-get); the tests that use them will be skipped" >&2
    exit 0
fi
echo "system-deps: installing ${need[*]}" >&2
apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || echo "system-deps: could not install ${need[*]}; the tests that use them will be skipped" >&2
exit 0
