using System.Runtime.InteropServices;
using Gemma.Kernels;

namespace Gemma.Benchmarks.Kernels;

/// <summary>
/// <c>attention-quick</c>: best-of-N time of one decode token's attention at a position, with the 2B's shape by default
/// (26 layers × 4 KV heads, 2 query heads each, head_dim 256), one thread, every (layer, KV head) on its own keys and
/// values so the bytes come from memory as in decode; f32 and f16 interleaved. Prints the parts (scores, softmax,
/// weighted values) and the KV bytes read per ms.
/// <code>dotnet run -c Release --project Gemma.Benchmarks -- attention-quick --position 4000 --rounds 10 [--subnormal]</code>
/// </summary>
internal static unsafe class AttentionQuickCommand
{
    public static int Run(string[] args)
    {
        int position = 4000, rounds = 10, slabs = 26 * 4, group = 2, hd = 256;
        double scale = 1;
        for (int i = 0; i < args.Length; i++)
            switch (args[i])
            {
                case "--position": position = int.Parse(args[++i]); break;
                case "--rounds": rounds = int.Parse(args[++i]); break;
                case "--slabs": slabs = int.Parse(args[++i]); break;
                case "--group": group = int.Parse(args[++i]); break;
                // Keys and values times 1e-5: nearly every f16 element a subnormal half (a float32 denormal in F16ScaledRow).
                case "--subnormal": scale = 1e-5; break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        long elems = (long)slabs * position * hd;
        float* kf = Alloc<float>(elems), vf = Alloc<float>(elems);
        Half* kh = Alloc<Half>(elems), vh = Alloc<Half>(elems);
        var rng = new Random(1);
        for (long i = 0; i < elems; i++)
        {
            kf[i] = (float)((rng.NextDouble() * 2 - 1) * scale); vf[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
            kh[i] = (Half)kf[i]; vh[i] = (Half)vf[i];
        }
        float[] q = new float[group * hd], output = new float[group * hd], scores = new float[group * position];
        for (int i = 0; i < q.Length; i++) q[i] = (float)(rng.NextDouble() * 2 - 1);
        var best = new double[2, 3];
        for (int t = 0; t < 2; t++) for (int p = 0; p < 3; p++) best[t, p] = double.MaxValue;
        for (int round = 0; round < rounds + 1; round++)
            for (int type = 0; type < 2; type++)
            {
                double sc = 0, sm = 0, wv = 0;
                for (int s = 0; s < slabs; s++)
                {
                    long off = (long)s * position * hd;
                    long t0 = ThreadCpu.Nanoseconds();
                    if (type == 0) Attention.Scores(q, group, new ReadOnlySpan<float>(kf + off, position * hd), position, 0.0625f, 50f, scores, position);
                    else Attention.Scores(q, group, new ReadOnlySpan<Half>(kh + off, position * hd), position, 0.0625f, 50f, scores, position);
                    long t1 = ThreadCpu.Nanoseconds();
                    for (int h = 0; h < group; h++) Attention.SoftmaxInPlace(scores.AsSpan(h * position, position));
                    long t2 = ThreadCpu.Nanoseconds();
                    if (type == 0) Attention.AccumulateWeightedValues(scores, group, position, new ReadOnlySpan<float>(vf + off, position * hd), position, output);
                    else Attention.AccumulateWeightedValues(scores, group, position, new ReadOnlySpan<Half>(vh + off, position * hd), position, output);
                    long t3 = ThreadCpu.Nanoseconds();
                    sc += t1 - t0; sm += t2 - t1; wv += t3 - t2;
                }
                if (round == 0) continue; // warm-up
                double f = 1e-6; // ns → ms
                best[type, 0] = Math.Min(best[type, 0], sc * f); best[type, 1] = Math.Min(best[type, 1], sm * f); best[type, 2] = Math.Min(best[type, 2], wv * f);
            }
        Console.WriteLine($"position={position} slabs={slabs} group={group} head_dim={hd} rounds={rounds} (best per part, thread CPU ms per token: the machine may be shared)");
        Console.WriteLine("| KV | scores | softmax | values | total | KV GB/s |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        for (int type = 0; type < 2; type++)
        {
            double total = best[type, 0] + best[type, 1] + best[type, 2];
            double bytes = 2.0 * elems * (type == 0 ? 4 : 2);
            Console.WriteLine($"| {(type == 0 ? "f32" : "f16")} | {best[type, 0]:F2} | {best[type, 1]:F2} | {best[type, 2]:F2} | {total:F2} | {bytes / total / 1e6:F1} |");
        }
        return 0;
    }


    private static T* Alloc<T>(long count) where T : unmanaged => (T*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(T)), 4096);
}
