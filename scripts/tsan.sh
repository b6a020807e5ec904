#!/usr/bin/env bash
# Builds the native core (no Node) against the system's libuv and zlib, and
# runs test/native/core_stress.cc twice: under ThreadSanitizer (data races),
# then under AddressSanitizer and UBSan, whose different timing catches what
# TSan cannot see: a store and a load reordered by the CPU (a lost wake-up in
# the spin handshake was found that way), and use after free.
# Needs: g++, libuv1-dev, zlib1g-dev (Debian package names).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/tsan
mkdir -p "$out"
core_sources=$(ls native/core/*.cc)
build() {
  g++ -std=c++17 -g -O1 "$2" -fno-omit-frame-pointer \
    -o "$out/$1" test/native/core_stress.cc $core_sources -luv -lz -lpthread
}
build core_stress_tsan -fsanitize=thread
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$out/core_stress_tsan" "${1:-20}"
# float-cast-overflow is not part of `undefined`: it checks the delays' conversions.
build core_stress_asan -fsanitize=address,undefined,float-cast-overflow
ASAN_OPTIONS="abort_on_error=1 detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" \
  "$out/core_stress_asan" "${1:-20}"
