#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer into
# build/ (which node-gyp-build prefers over prebuilds/), runs the test suite
# with the sanitizer runtime preloaded into every node process, then removes
# the sanitized build. Any report fails the run: ASan and UBSan abort the
# process, and the tests check how every process exited.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'rm -rf build' EXIT
# The suites that drive the addon (packing, Jupyter, Bun and Deno add nothing here but time).
NATIVE_TESTS=(test/future.test.ts test/lifecycle.test.ts test/exit.test.ts test/exit-races.test.ts test/tasks.test.ts
  test/fairness.test.ts test/helpers-api.test.ts test/validation.test.ts test/fuzz-args.test.ts test/model.test.ts
  test/native-binding.test.ts test/native-extension.test.ts test/examples.test.ts)
SIDELOOP_SANITIZE=1 npx node-gyp rebuild >/dev/null
npm run build:ts >/dev/null
# Node frees little at exit by design: leak checking would only report that.
LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:print_summary=1" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
  npx vitest run "${@:-${NATIVE_TESTS[@]}}"
