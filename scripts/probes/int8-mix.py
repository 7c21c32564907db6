#!/usr/bin/env python3
# Instruction-mix probe for the Q8_0 int8 kernels (docs/kernels.md, "Instruction-level limits on this CPU").
# Generates C files with inline-asm loops — the per-(row, token, 64 multiply-adds) step of the small-batch kernel, of
# the packed GEMM tile, a vpdpbusd variant, single instructions and pairs (which pipes they share), and the Dot<TN> pair
# loop as the JIT emits it — compiles them with gcc and runs them. Time is thread CPU time, reported in cycles of a
# 16-chain vfmadd231ps zmm loop (one 512-bit FMA per cycle on Zen 4), so the clock need not be known.
# Needs gcc and an AVX-512 (BW, VNNI) CPU. Usage: python3 scripts/probes/int8-mix.py
import os, subprocess, tempfile
out_dir = tempfile.mkdtemp(prefix="int8-mix-")
# Part 1: per-token-step mixes and single instructions / pairs, 8 independent tokens per iteration.
V = {}
def z(i): return f"%%zmm{i}"
def y(i): return f"%%ymm{i}"
# registers: t: 0-7 work, 8-15 scale temp, 16-23 acc, 24 pick, 25 scale src, 26 |w|, 27 zero, 28 ones16, 29 negx, 30 spare
def small(t, perm=True, vnni=False, load=True):
    s = []
    if load: s.append(f"vmovdqu64 {t*64}(%1), {z(t)}")
    s.append(f"vpsubb {z(t)}, {z(27)}, {z(t)}%{{%%k1%}}")
    if vnni:
        s.append(f"vpxord {z(8+t)}, {z(8+t)}, {z(8+t)}")
        s.append(f"vpdpbusd {z(t)}, {z(26)}, {z(8+t)}")
        s.append(f"vcvtdq2ps {z(8+t)}, {z(t)}")
    else:
        s.append(f"vpmaddubsw {z(t)}, {z(26)}, {z(t)}")
        s.append(f"vpmaddwd {z(28)}, {z(t)}, {z(t)}")
        s.append(f"vcvtdq2ps {z(t)}, {z(t)}")
    if perm:
        s.append(f"vpermps {z(25)}, {z(24)}, {z(8+t)}")
        s.append(f"vfmadd231ps {z(8+t)}, {z(t)}, {z(16+t)}")
    else:
        s.append(f"vfmadd231ps {z(25)}, {z(t)}, {z(16+t)}")
    return s
def gemm(t):
    # panel: mask at 512(%1), |w| at 1024(%1), scale at 1536(%1) (per row; same row here), x in registers zmm0..7 kept? use load
    s = [f"vmovdqu64 2048(%1), {z(t)}",              # mask vector from the panel
         f"vpternlogd $0xCA, {z(29)}, {z(30)}, {z(t)}", # mask ? -x : x
         f"vmovdqu64 1024(%1), {z(8+t)}",           # |w|
         f"vpmaddubsw {z(t)}, {z(8+t)}, {z(t)}",
         f"vpmaddwd {z(28)}, {z(t)}, {z(t)}",
         f"vcvtdq2ps {z(t)}, {z(t)}",
         f"vmulps 1536(%1), {z(25)}, {z(8+t)}",
         f"vfmadd231ps {z(8+t)}, {z(t)}, {z(16+t)}"]
    return s
def ymm2(t):
    # 256-bit, one block per vector, two blocks per token step; scale product from memory as an embedded broadcast
    s = []
    for h in range(2):
        r = t if h == 0 else 8 + t
        s += [f"vmovdqu {t*64 + h*32}(%1), {y(r)}",
              f"vpsubb {y(r)}, {y(27)}, {y(r)}%{{%%k1%}}",
              f"vpmaddubsw {y(r)}, {y(26)}, {y(r)}",
              f"vpmaddwd {y(28)}, {y(r)}, {y(r)}",
              f"vcvtdq2ps {y(r)}, {y(r)}",
              f"vfmadd231ps {512 + t*8 + h*4}(%1)%{{1to8%}}, {y(r)}, {y(16+t)}"]
    return s
def single(op):
    def f(t):
        return {
            "maddubsw": [f"vpmaddubsw {z(26)}, {z(27)}, {z(t)}"],
            "maddwd": [f"vpmaddwd {z(26)}, {z(27)}, {z(t)}"],
            "cvt": [f"vcvtdq2ps {z(26)}, {z(t)}"],
            "permps": [f"vpermps {z(25)}, {z(24)}, {z(t)}"],
            "subbk": [f"vpsubb {z(26)}, {z(27)}, {z(t)}%{{%%k1%}}"],
            "ternlog": [f"vpternlogd $0xCA, {z(29)}, {z(30)}, {z(t)}"],
            "dpbusd": [f"vpdpbusd {z(26)}, {z(27)}, {z(16+t)}"],
            "mulps": [f"vmulps {z(26)}, {z(27)}, {z(t)}"],
            "fma": [f"vfmadd231ps {z(26)}, {z(27)}, {z(16+t)}"],
            "load": [f"vmovdqu64 {t*64}(%1), {z(t)}"],
            "maddubsw+maddwd": [f"vpmaddubsw {z(26)}, {z(27)}, {z(t)}", f"vpmaddwd {z(26)}, {z(27)}, {z(8+t)}"],
            "maddwd+cvt": [f"vpmaddwd {z(26)}, {z(27)}, {z(t)}", f"vcvtdq2ps {z(26)}, {z(8+t)}"],
            "maddwd+fma": [f"vpmaddwd {z(26)}, {z(27)}, {z(t)}", f"vfmadd231ps {z(26)}, {z(27)}, {z(16+t)}"],
            "cvt+fma": [f"vcvtdq2ps {z(26)}, {z(t)}", f"vfmadd231ps {z(26)}, {z(27)}, {z(16+t)}"],
            "permps+fma": [f"vpermps {z(25)}, {z(24)}, {z(t)}", f"vfmadd231ps {z(26)}, {z(27)}, {z(16+t)}"],
            "cvt+permps": [f"vcvtdq2ps {z(26)}, {z(t)}", f"vpermps {z(25)}, {z(24)}, {z(8+t)}"],
            "maddubsw+cvt": [f"vpmaddubsw {z(26)}, {z(27)}, {z(t)}", f"vcvtdq2ps {z(26)}, {z(8+t)}"],
            "maddubsw+permps": [f"vpmaddubsw {z(26)}, {z(27)}, {z(t)}", f"vpermps {z(25)}, {z(24)}, {z(8+t)}"],
        }[op]
    return f
variants = [("small (Dot<TN> step)", small), ("small without vpermps", lambda t: small(t, perm=False)),
            ("small, vpdpbusd instead of maddubsw+maddwd", lambda t: small(t, vnni=True)),
            ("gemm tile step (panel operands)", gemm), ("256-bit, 2 blocks, broadcast scale", ymm2)]
for op in ["maddubsw","maddwd","cvt","permps","subbk","ternlog","dpbusd","mulps","fma","load","maddubsw+maddwd","maddwd+cvt","maddwd+fma","cvt+fma","permps+fma","cvt+permps","maddubsw+cvt","maddubsw+permps"]:
    variants.append((op, single(op)))
clob = ",".join(f'"zmm{i}"' for i in range(32))
out = ['#define _GNU_SOURCE', '#include <stdio.h>', '#include <time.h>',
       'static double now(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}',
       'static char buf[8192] __attribute__((aligned(64)));', '#define ITER 4000000L']
out.append('static double fma_peak(void){ long n=ITER*4; double t0=now(); __asm__ volatile("1:\\n' +
           ''.join(f'vfmadd231ps %%zmm30,%%zmm31,%%zmm{i}\\n' for i in range(16)) +
           f'dec %0\\n jnz 1b\\n" : "+r"(n) : "r"(buf) : "memory","cc",{clob}); return (now()-t0)/(ITER*4*16.0); }}')
for k, (name, f) in enumerate(variants):
    body = "".join(ins + "\\n" for t in range(8) for ins in f(t))
    out.append(f'static double v{k}(void){{ long n=ITER; double t0=now(); __asm__ volatile('
               f'"vpxord %%zmm27,%%zmm27,%%zmm27\\n kxnorq %%k1,%%k1,%%k1\\n 1:\\n{body}dec %0\\n jnz 1b\\n" : "+r"(n) : "r"(buf) : "memory","cc","k1",{clob}); return (now()-t0)/(ITER*8.0); }}')
out.append('int main(void){ for(int i=0;i<8192;i++) buf[i]=(char)(i*7); double best[64]; for(int i=0;i<64;i++) best[i]=1e9; double pk=1e9;')
out.append(' for(int r=0;r<5;r++){ double p=fma_peak(); if(p<pk) pk=p; double t;')
for k, _ in enumerate(variants):
    out.append(f'  t=v{k}(); if(t<best[{k}]) best[{k}]=t;')
out.append(' }')
out.append(' printf("zmm FMA chain: %.3f ns per FMA (=1 cycle at %.2f GHz if 1 zmm FMA/cycle)\\n", pk*1e9, 1e-9/pk);')
for k, (name, _) in enumerate(variants):
    out.append(f' printf("%-45s %6.2f cycles per token step\\n", "{name}", best[{k}]/pk);')
out.append(' return 0; }')
open(os.path.join(out_dir, 'mix.c'), 'w').write("\n".join(out) + "\n")

# Part 2: the Dot<TN> pair iteration as the JIT emits it (n tokens), in registers/L1.
def z(i): return f"%%zmm{i}"
def y(i): return f"%%ymm{i}"
def body(n, pervec_zero=True, inserts=True, absb=True, cmp=True, perm=True):
    s=[]
    if inserts:
        s += [f"vmovups 2(%1), {y(19)}", f"vmovups 36(%1), {y(20)}",
              f"vinsertf32x8 $0, {y(19)}, {z(0)}, {z(0)}", f"vinsertf32x8 $1, {y(20)}, {z(0)}, {z(0)}"]
    if absb: s.append(f"vpabsb {z(0)}, {z(19)}")
    if cmp: s += [f"vpxord {z(21)}, {z(21)}, {z(21)}", f"vpcmpb $1, {z(21)}, {z(0)}, %%k1"]
    for t in range(n):
        s += [f"vmovups {256 + t*64}(%1), {z(20)}",
              f"vpxord {y(21)}, {y(21)}, {y(21)}" if pervec_zero else "",
              f"vpsubb {z(20)}, {z(21)}, {z(20)}%{{%%k1%}}",
              f"vpmaddubsw {z(20)}, {z(19)}, {z(20)}",
              f"vpmaddwd {z(12)}, {z(20)}, {z(20)}",
              f"vcvtdq2ps {z(20)}, {z(20)}"]
        if perm:
            s += [f"vpermps {z(14+t)}, {z(17)}, {z(22)}", f"vfmadd231ps {z(22)}, {z(20)}, {z(7+t) if t < 4 else z(25+t-4)}"]
        else:
            s += [f"vfmadd231ps {z(14+t)}, {z(20)}, {z(7+t) if t < 4 else z(25+t-4)}"]
    s.append(f"vpaddd {z(18)}, {z(17)}, {z(17)}")
    return [x for x in s if x]
clob = ",".join(f'"zmm{i}"' for i in range(32))
V=[("n=4 kernel loop", body(4)), ("n=8 kernel loop (regs reused)", body(8)), ("n=4 no vpermps", body(4, perm=False)),
   ("n=4 no weight prep", body(4, inserts=False, absb=False, cmp=False)), ("n=1 kernel loop", body(1)), ("n=2 kernel loop", body(2))]
out=['#define _GNU_SOURCE','#include <stdio.h>','#include <time.h>',
 'static double now(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}',
 'static char buf[8192] __attribute__((aligned(64)));','#define ITER 4000000L']
out.append('static double fma_peak(void){ long n=ITER*4; double t0=now(); __asm__ volatile("1:\\n' + ''.join(f'vfmadd231ps %%zmm30,%%zmm31,%%zmm{i}\\n' for i in range(16)) + f'dec %0\\n jnz 1b\\n" : "+r"(n) : "r"(buf) : "memory","cc",{clob}); return (now()-t0)/(ITER*4*16.0); }}')
for k,(name,b) in enumerate(V):
    out.append(f'static double v{k}(void){{ long n=ITER; double t0=now(); __asm__ volatile("vpxord %%zmm0,%%zmm0,%%zmm0\\n 1:\\n' + ''.join(x+"\\n" for x in b) + f'dec %0\\n jnz 1b\\n" : "+r"(n) : "r"(buf) : "memory","cc","k1",{clob}); return (now()-t0)/ITER; }}')
out.append('int main(void){ double best[16]; for(int i=0;i<16;i++) best[i]=1e9; double pk=1e9; for(int r=0;r<5;r++){ double p=fma_peak(); if(p<pk) pk=p; double t;')
for k,_ in enumerate(V): out.append(f' t=v{k}(); if(t<best[{k}]) best[{k}]=t;')
out.append('}')
for k,(name,_) in enumerate(V): out.append(f' printf("%-35s %6.2f cycles per pair iteration\\n", "{name}", best[{k}]/pk);')
out.append('return 0;}')
open(os.path.join(out_dir, 'mix2.c'),'w').write("\n".join(out)+"\n")

for name, flags in (("mix", ["-mavx512f", "-mavx512bw", "-mavx512vnni"]), ("mix2", ["-mavx512f", "-mavx512bw", "-mavx512dq"])):
    c, exe = os.path.join(out_dir, name + ".c"), os.path.join(out_dir, name)
    subprocess.run(["gcc", "-O2", *flags, "-o", exe, c], check=True)
    subprocess.run([exe], check=True)
