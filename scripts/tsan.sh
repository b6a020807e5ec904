#!/usr/bin/env bash
# Builds the native core (no Node) with ThreadSanitizer against the system's
# libuv, OpenSSL and zlib, and runs test/native/core_stress.cc.
# Needs: g++, libuv1-dev, libssl-dev, zlib1g-dev (Debian package names).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/tsan
mkdir -p "$out"
core_sources=$(ls native/core/*.cc)
g++ -std=c++17 -g -O1 -fsanitize=thread -fno-omit-frame-pointer \
  -o "$out/core_stress" test/native/core_stress.cc $core_sources \
  -luv -lcrypto -lz -lpthread
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$out/core_stress" "${1:-20}"
