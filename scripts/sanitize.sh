#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer into
# build/ (which node-gyp-build prefers over prebuilds/), runs the test suite
# with the sanitizer runtime preloaded into every node process, then removes
# the sanitized build. Any report fails the run: ASan and UBSan abort the
# process, and the tests check how every process exited.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'rm -rf build' EXIT
SIDELOOP_SANITIZE=1 npx node-gyp rebuild >/dev/null
npm run build:ts >/dev/null
# Node frees little at exit by design: leak checking would only report that.
LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:print_summary=1" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
  npx vitest run "$@"
