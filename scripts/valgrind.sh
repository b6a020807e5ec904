#!/usr/bin/env bash
# Runs test/native/lifecycle-script.js (start, flood, cancel, every task kind,
# shutdown both ways, restart, process.exit with work in flight) under
# valgrind's memcheck. Fails on any invalid read or write, use of
# uninitialised memory, or definite leak.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
valgrind --tool=memcheck --suppressions=scripts/valgrind.supp --leak-check=full --errors-for-leak-kinds=definite --num-callers=30 \
  --error-exitcode=99 --log-file="$log" node test/native/lifecycle-script.js || status=$?
grep -E "ERROR SUMMARY|definitely lost" "$log" | sed 's/^==[0-9]*== //'
if [ "${status:-0}" != 0 ]; then
  echo "valgrind found problems (exit ${status}); full log: $log"
  grep -B2 -A30 -E "Invalid|uninitialised|definitely lost in" "$log" | head -200
  exit 1
fi
rm -f "$log"
