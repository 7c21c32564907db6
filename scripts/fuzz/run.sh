#!/usr/bin/env bash
# Coverage-guided fuzzing of one loader with SharpFuzz + AFL++ (see README.md beside this script).
#   scripts/fuzz/run.sh TARGET [SECONDS]     TARGET: safetensors | config | tokenizer-json | tokenizer-model | index
# Needs afl-fuzz on PATH (Debian: apt-get install afl++). Findings go to artifacts/fuzz/TARGET/out.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:?usage: scripts/fuzz/run.sh TARGET [SECONDS]}
seconds=${2:-600}
work=artifacts/fuzz/$target
out=scripts/fuzz/Gemma.Fuzz/bin/Release/net10.0

command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++" >&2; exit 1; }
tools=artifacts/fuzz/tools
[ -x "$tools/sharpfuzz" ] || dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tools"

dotnet build scripts/fuzz/Gemma.Fuzz -c Release -nologo -clp:ErrorsOnly
# Instrument the library under test (not the harness, not the runtime): AFL then sees Gemma.Core's branches.
"$tools/sharpfuzz" "$out/Gemma.Core.dll"

# Seed corpus: small valid files from the repository's fixtures.
mkdir -p "$work/in"
case $target in
  safetensors)     cp Gemma.Tests/Fixtures/goldens/gemma2-micro/model.safetensors "$work/in/" ;;
  config)          for d in Gemma.Tests/Fixtures/goldens/*/; do cp "$d/config.json" "$work/in/$(basename "$d").json"; done ;;
  tokenizer-json)  dotnet "$out/Gemma.Fuzz.dll" tokenizer-json --write-seed "$work/in/tokenizer.json" ;;   # 4 KB, not the 370 KB demo one
  tokenizer-model) dotnet "$out/Gemma.Fuzz.dll" tokenizer-model --write-seed "$work/in/tokenizer.model" ;;
  index)           cp Gemma.Cli/demo-model/gemma2-ja-demo/model.safetensors.index.json "$work/in/" ;;
  *) echo "unknown target $target" >&2; exit 1 ;;
esac

export AFL_SKIP_BIN_CHECK=1            # the target is `dotnet`, not an AFL-compiled binary
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_SKIP_CPUFREQ=1
timeout --preserve-status "$seconds" afl-fuzz -i "$work/in" -o "$work/out" -t 10000 -m none \
  -- dotnet "$out/Gemma.Fuzz.dll" "$target" || true
echo "crashes: $(ls "$work/out/default/crashes" 2>/dev/null | grep -vc README || true) (replay: dotnet $out/Gemma.Fuzz.dll $target --run FILE)"
