#!/usr/bin/env bash
# Publishes the gemma command as one Native AOT executable (no .NET runtime needed on the target) that carries the
# demo model inside itself, then smoke-tests it copied alone into an empty folder.
#
#   bash scripts/publish-aot.sh            # x86-64-v3 (AVX2 + FMA): the portable default
#   bash scripts/publish-aot.sh x86-64-v4  # AVX-512 build (Vector512 kernels); refuses to start without AVX-512
#   RID=linux-arm64 bash scripts/publish-aot.sh ''   # other targets: the runtime's default ISA for that RID
#
# Output: artifacts/aot/<rid>-<isa>/gemma (~20 MiB: 4.6 MiB of code + the 14.8 MiB demo GGUF; gemma.dbg holds the
# symbols and is not needed to run). About 40 s of CPU; 1-3 minutes of wall time on two busy cores.
# Add a real model to it with: artifacts/aot/<rid>-<isa>/gemma bundle --model FILE.gguf --out gemma-FILE
# The ISA is compiled in: see docs/api.md ("Native AOT") for why the default x86-64-v2 is not used.
set -euo pipefail
cd "$(dirname "$0")/.."
isa=${1-x86-64-v3}
rid=${RID:-linux-x64}
out="artifacts/aot/${rid}-${isa:-default}"
args=(-c Release -r "$rid" -p:PublishAot=true -o "$out" -nologo)
[ -n "$isa" ] && args+=("-p:IlcInstructionSet=$isa")

# The native object is cached per RID, not per ISA: drop it so a change of ISA is really compiled.
rm -rf "Gemma.Cli/obj/Release/net10.0/$rid/native"
dotnet publish Gemma.Cli "${args[@]}"

exe="$out/gemma"
echo "== $exe: $(du -h "$exe" | cut -f1) (debug symbols in gemma.dbg, not needed to run)"
if [ "$rid" = linux-x64 ] || [ "$rid" = "$(dotnet --info | sed -n 's/^ *RID: *//p' | head -1)" ]; then
  # The executable alone in an empty folder, with no model in the environment: the embedded demo model answers.
  alone=$(mktemp -d)
  trap 'rm -rf "$alone"' EXIT
  cp "$exe" "$alone/"
  (cd "$alone" && env -u GEMMA_MODEL HF_HUB_CACHE="$alone/no-cache" ./gemma generate \
      --prompt "Debian システムでパッケージをインストールするには" --seed 1 -n 16)
fi
