#!/usr/bin/env bash
# Publishes the gemma command as one Native AOT executable (no .NET runtime needed on the target) that carries the
# demo model inside itself, then smoke-tests it copied alone into an empty folder.
#
#   bash scripts/publish-aot.sh              # linux-x64, x86-64-v3 (AVX2 + FMA): the portable default
#   bash scripts/publish-aot.sh x86-64-v4    # linux-x64 AVX-512 build (Vector512 kernels); refuses to start without AVX-512
#   bash scripts/publish-aot.sh linux-arm64  # ARM64 (AdvSimd/NEON Vector128 kernels; SDOT used where the CPU has it)
#   bash scripts/publish-aot.sh RID [ISA]    # other targets: the runtime's default ISA for that RID unless ISA is given
#   RID=linux-arm64 bash scripts/publish-aot.sh ''   # the older spelling of the line above
#
# Output: artifacts/aot/<rid>-<isa>/gemma (~20 MiB: 4.6 MiB of code + the 14.8 MiB demo GGUF; gemma.dbg holds the
# symbols and is not needed to run). About 40 s of CPU; 1-3 minutes of wall time on two busy cores.
# Add a real model to it with: artifacts/aot/<rid>-<isa>/gemma bundle --model FILE.gguf --out gemma-FILE
# The ISA is compiled in: see docs/api.md ("Native AOT") for why the default x86-64-v2 is not used.
#
# linux-arm64 on an x86-64 machine is a cross-compile: ILC emits arm64 code itself, and Debian's clang + lld link it
# against the arm64 C runtime installed through multiarch (scripts/install-test-deps.sh installs all of it; SysRoot=/
# because multiarch puts the arm64 libraries in /usr/lib/aarch64-linux-gnu). The smoke test then runs the executable
# under qemu-aarch64-static (user-mode emulation) when qemu is there. See docs/arm64.md.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1-}" in
  linux-*|linux-musl-*|osx-*|win-*) rid=$1; isa=${2-} ;;
  *) isa=${1-x86-64-v3}; rid=${RID:-linux-x64} ;;
esac
out="artifacts/aot/${rid}-${isa:-default}"
args=(-c Release -r "$rid" -p:PublishAot=true -o "$out" -nologo)
[ -n "$isa" ] && args+=("-p:IlcInstructionSet=$isa")

host_arch=$(uname -m)
emulator=()
if [ "$rid" = linux-arm64 ] && [ "$host_arch" != aarch64 ]; then
  args+=(-p:CppCompilerAndLinker=clang -p:SysRoot=/ -p:LinkerFlavor=lld)
  if command -v qemu-aarch64-static >/dev/null; then emulator=(qemu-aarch64-static)
  elif command -v qemu-aarch64 >/dev/null; then emulator=(qemu-aarch64)
  fi
fi

# The native object is cached per RID, not per ISA: drop it so a change of ISA is really compiled.
rm -rf "Gemma.Cli/obj/Release/net10.0/$rid/native"
dotnet publish Gemma.Cli "${args[@]}"

exe="$out/gemma"
echo "== $exe: $(du -h "$exe" | cut -f1) (debug symbols in gemma.dbg, not needed to run)"
native=no
case "$rid/$host_arch" in linux-x64/x86_64|linux-arm64/aarch64) native=yes ;; esac
if [ $native = yes ] || [ ${#emulator[@]} -gt 0 ]; then
  # The executable alone in an empty folder, with no model in the environment: the embedded demo model answers.
  alone=$(mktemp -d)
  trap 'rm -rf "$alone"' EXIT
  cp "$exe" "$alone/"
  [ ${#emulator[@]} -gt 0 ] && echo "== running it under ${emulator[*]}"
  (cd "$alone" && env -u GEMMA_MODEL HF_HUB_CACHE="$alone/no-cache" ${emulator[@]+"${emulator[@]}"} ./gemma generate \
      --prompt "Debian システムでパッケージをインストールするには" --seed 1 -n 16)
fi
