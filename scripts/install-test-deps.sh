#!/usr/bin/env bash
# Installs what the tests need beyond the .NET SDK, with Debian's apt. Idempotent and quiet; a no-op (no apt) when
# everything is there; needs root to install (CI runs as root).
#   - chromium: the headless-browser test of the chat page that `gemma serve` serves at /
#     (Gemma.Tests/Serve/ChatPageBrowserTests.cs).
#   - the linux-arm64 pass (docs/arm64.md): qemu-user-static runs arm64 executables on this x86-64 machine; clang, lld
#     and the arm64 C runtime (libc6-dev:arm64, libgcc-12-dev:arm64 through Debian multiarch) cross-link the Native AOT
#     executable (`scripts/publish-aot.sh linux-arm64`); libstdc++6:arm64 is what the JIT runtime of the
#     self-contained arm64 test executable loads. zlib is not needed: the AOT runtime pack carries its own libz.a.
# Without them the tests that need them fail with a message naming this script (never silently skipped).
set -euo pipefail
arm64_lib=/usr/lib/aarch64-linux-gnu
have_all() {
  command -v chromium && command -v qemu-aarch64-static && command -v clang && command -v ld.lld \
    && [ -e "$arm64_lib/libc.so" ] && [ -e "$arm64_lib/libstdc++.so.6" ] && ls /usr/lib/gcc/aarch64-linux-gnu/*/crtbegin.o
}
if have_all >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: run as root to apt-get install chromium, qemu-user-static, clang, lld and the arm64 libraries" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium qemu-user-static clang lld \
  libc6-dev:arm64 libgcc-12-dev:arm64 libstdc++6:arm64 >/dev/null
if ! have_all >/dev/null 2>&1; then echo "install-test-deps: installed, but a tool or arm64 library is still missing" >&2; exit 1; fi
