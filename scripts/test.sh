#!/usr/bin/env bash
# The whole test suite: every test once with the widest SIMD path this CPU has, then the kernel tests
# again with AVX-512 disabled (Vector256/AVX2 path) and with hardware intrinsics disabled (scalar path), and the kernel
# and golden-logit tests on linux-arm64 under qemu-user emulation (the AdvSimd Vector128 path; docs/arm64.md).
# (.NET 10 reads DOTNET_EnableAVX512; the older DOTNET_EnableAVX512F is set too for older runtimes. Each pass names
# the path it expects, and a kernel test fails if the runtime did not take it.)
# Prints what each pass ran, then the distinct test cases as one plain line "N passed, N failed" at the end.
set -u
cd "$(dirname "$0")/.."
results="$(pwd)/artifacts/test-results"
rm -rf "$results"; mkdir -p "$results"
status=0

# Test dependencies beyond the SDK (chromium for the chat-page browser test); a failure shows up in that test.
bash scripts/install-test-deps.sh || echo "install-test-deps failed: the browser test will fail" >&2

dotnet build gemma.sln -c Release -nologo -clp:ErrorsOnly || exit 1

run() { # name, env..., then -- and dotnet test arguments
  local name=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  echo "== test pass: $name"
  env "${envs[@]}" dotnet test Gemma.Tests/Gemma.Tests.csproj -c Release --no-build -nologo \
      --logger "trx;LogFileName=$name.trx" --results-directory "$results" "$@" || status=1
}

run full DOTNET_TieredPGO=1 --
run avx2 DOTNET_EnableAVX512=0 DOTNET_EnableAVX512F=0 GEMMA_EXPECTED_KERNEL_PATH=Vector256 -- --filter "Category=Kernels"
# Vector128 (the ARM64 AdvSimd path's code on x86: 128-bit vectors with FMA, as on ARM64) plus the golden logits.
run v128 DOTNET_PreferredVectorBitWidth=128 GEMMA_EXPECTED_KERNEL_PATH=Vector128 -- --filter "Category=Kernels|FullyQualifiedName~GoldenLogitsTests"
run scalar DOTNET_EnableHWIntrinsic=0 GEMMA_EXPECTED_KERNEL_PATH=scalar -- --filter "Category=Kernels"

# linux-arm64 under qemu-user (docs/arm64.md): `dotnet test` cannot drive tests on another architecture, so the tests
# are published as a self-contained linux-arm64 executable with their own runner (-p:GemmaTestExecutable=true: NUnit's
# Microsoft.Testing.Platform runner, which writes the trx itself) into artifacts/ (separate bin/obj, so the build above
# is untouched) and run under qemu-aarch64-static. DOTNET_EnableWriteXorExecute=0: with W^X the JIT's double-mapped code
# pages make the runtime crash or throw spurious NullReferenceExceptions under qemu-user. A missing qemu, a failed
# publish or a run that wrote no trx is a failed case in the totals, never a silent skip.
arm64_pass() {
  local name=arm64 trx="$results/arm64.trx" out=artifacts/arm64-tests qemu
  echo "== test pass: $name (linux-arm64 under qemu-user: Category=Kernels + GoldenLogitsTests)"
  fail() { # why: a trx with one failed case, so the totals count it
    echo "arm64 pass: $1" >&2; status=1
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">\n<Results><UnitTestResult testId="arm64-pass" testName="arm64 pass" outcome="Failed"><Output><ErrorInfo><Message>%s</Message></ErrorInfo></Output></UnitTestResult></Results>\n<ResultSummary outcome="Failed"><Counters total="1" executed="1" passed="0" failed="1" /></ResultSummary>\n</TestRun>\n' "$1" >"$trx"
  }
  qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64) \
    || { fail "qemu-aarch64(-static) is missing: run scripts/install-test-deps.sh as root"; return; }
  rm -rf "$out"
  dotnet publish Gemma.Tests/Gemma.Tests.csproj -c Release -r linux-arm64 --self-contained -p:GemmaTestExecutable=true \
      --artifacts-path artifacts/arm64-build -o "$out" -nologo -clp:ErrorsOnly \
    || { fail "dotnet publish of the linux-arm64 test executable failed"; return; }
  DOTNET_EnableWriteXorExecute=0 GEMMA_EXPECTED_KERNEL_PATH=Vector128 "$qemu" "$out/Gemma.Tests" \
      --filter "Category=Kernels|FullyQualifiedName~GoldenLogitsTests" --minimum-expected-tests 100 \
      --report-trx --report-trx-filename "$name.trx" --results-directory "$results" --no-progress --no-ansi || status=1
  [ -f "$trx" ] || fail "the linux-arm64 test run under $qemu ended without writing $trx"
}
arm64_pass

# Per pass: what that pass ran. The kernel passes re-run the same cases on narrower SIMD paths, so they are reported
# separately and not added to the total.
for f in "$results"/*.trx; do
  [ -f "$f" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$f" | head -1)
  p=$(echo "$counters" | grep -o ' passed="[0-9]*"' | grep -o '[0-9]*')
  fl=$(echo "$counters" | grep -o ' failed="[0-9]*"' | grep -o '[0-9]*')
  echo "  pass $(basename "$f" .trx): ${p:-0} passed, ${fl:-0} failed"
done
# The total counts distinct test cases (by their trx testId): a case passed if it passed in every pass that ran it,
# failed if it failed in any. Skipped or not-run cases count as neither (and are reported).
read -r passed failed other < <(grep -ho '<UnitTestResult [^>]*>' "$results"/*.trx 2>/dev/null \
  | sed -E 's/.* testId="([^"]*)".* outcome="([^"]*)".*/\1 \2/' \
  | awk '{ if (!($1 in o) || o[$1] == "Passed") o[$1] = $2 }
         END { for (k in o) { if (o[k] == "Passed") p++; else if (o[k] == "Failed") f++; else n++ } print p + 0, f + 0, n + 0 }')
passed=${passed:-0}; failed=${failed:-0}
[ "${other:-0}" -gt 0 ] && echo "  ${other} distinct cases neither passed nor failed (skipped / not run)"
echo "$passed passed, $failed failed"
if [ "$passed" -eq 0 ]; then echo "no test ran" >&2; exit 1; fi
[ "$failed" -eq 0 ] && exit $status || exit 1
