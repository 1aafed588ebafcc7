#!/usr/bin/env bash
# The performance test: tuning (when allowed), the sink, the generator at the target rate, live
# progress once per second, a clean stop on completion or Ctrl-C, tuning restored, and a report.
#   DURATION=30m RATE=4M WORKERS=40 scripts/test.sh [more loggend perftest flags]
# Exit status 0 only when every target passes (4M ev/s, CPU <= 75 %, memory <= 12 GB, loss < 0.5 %).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/loggend ] || make -s venv
exec .venv/bin/loggend perftest --duration "${DURATION:-30m}" --rate "${RATE:-4M}" --workers "${WORKERS:-40}" \
    --target-eps "${TARGET_EPS:-4M}" --report-dir "${REPORT_DIR:-reports/$(date +%Y%m%d-%H%M%S)}" "$@"
