using System.CommandLine;
using Gemma.Core;
using Gemma.Core.Config;
using Gemma.Core.Formats;
using Gemma.Kernels;

namespace Gemma.Cli.Commands;

/// <summary><c>gemma info</c>: configuration, tensors by dtype, sizes, a memory estimate and the kernels' SIMD path.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var common = new CommonOptions();
        var command = new Command("info", "Show a model's configuration, tensors and memory estimate.");
        common.AddTo(command);
        command.SetAction(parse => CliRunner.Run(() =>
        {
            using GemmaModel model = common.Load(parse);
            GemmaConfig c = model.Config;
            var o = Console.Out;
            o.WriteLine($"model:        {model.Location}");
            o.WriteLine($"family:       {c.Family}");
            o.WriteLine($"vocab:        {c.VocabSize}");
            o.WriteLine($"hidden:       {c.HiddenSize}   ffn: {c.IntermediateSize}   layers: {c.NumLayers}");
            o.WriteLine($"heads:        {c.NumHeads} query / {c.NumKvHeads} kv × head_dim {c.HeadDim}   query_pre_attn_scalar {c.QueryPreAttnScalar}");
            o.WriteLine($"attention:    {string.Concat(c.LayerTypes.Select(t => t == AttentionKind.Sliding ? 'S' : 'G'))} (S = sliding window {c.SlidingWindow?.ToString() ?? "-"}, G = global)");
            o.WriteLine($"soft-caps:    attention {c.AttnLogitSoftcapping?.ToString() ?? "none"}, final {c.FinalLogitSoftcapping?.ToString() ?? "none"}");
            o.WriteLine($"rope theta:   {Number(c.RopeTheta)} (sliding layers {Number(c.RopeLocalTheta)})   rms eps {Number(c.RmsNormEps)}");
            o.WriteLine($"context:      max_position_embeddings {c.MaxPositionEmbeddings}");
            o.WriteLine($"bos/eos:      {c.BosTokenId} / [{string.Join(", ", c.EosTokenIds)}]");
            IReadOnlyDictionary<string, TensorView> tensors = model.Weights.Source.Tensors;
            long totalBytes = 0, totalParams = 0;
            foreach (var group in tensors.Values.GroupBy(t => t.Type.ToString()).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                long bytes = group.Sum(t => t.ByteLength), count = group.Sum(t => t.ElementCount);
                totalBytes += bytes; totalParams += count;
                o.WriteLine($"tensors:      {group.Count(),4} × {group.Key,-5} {count / 1e6,10:F2} M params {bytes / 1048576.0,10:F1} MiB");
            }
            o.WriteLine($"total:        {totalParams / 1e6:F2} M params, {totalBytes / 1048576.0:F1} MiB of weights (memory-mapped)");
            using InferenceContext ctx = model.CreateContext();
            o.WriteLine($"KV cache:     {ctx.Cache.ReservedBytes / 1048576.0:F1} MiB reserved for {ctx.ContextLength} positions (float32; touched as it fills)");
            o.WriteLine($"kernels:      {KernelPath.Current}");
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>
    /// The shortest text that reads back to <paramref name="value"/>, exponent as Python writes it (<c>1e-06</c>).
    /// A value that is exactly a float32 (GGUF metadata stores them so) is written as that float: <c>1e-06</c>, not
    /// <c>9.999999974752427e-07</c>.
    /// </summary>
    internal static string Number(double value)
    {
        string text = (double)(float)value == value
            ? ((float)value).ToString("R", System.Globalization.CultureInfo.InvariantCulture)
            : value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        return text.Replace('E', 'e');
    }
}
