using System.Globalization;
using System.Text;

namespace Gemma.Cli.Bench;

/// <summary>One measured run on the roofline: its arithmetic intensity and achieved speed.</summary>
/// <param name="Label">Shown beside the point, e.g. "decode Q8_0 @100".</param>
/// <param name="FlopPerByte">FLOPs per byte read from memory.</param>
/// <param name="GFlopPerSecond">Achieved GFLOP/s.</param>
internal sealed record RooflinePoint(string Label, double FlopPerByte, double GFlopPerSecond);

/// <summary>A roof: the read bandwidth slope and the FMA peak flat line of one thread count.</summary>
internal sealed record RooflineCeiling(string Label, double ReadGBPerSecond, double FmaGFlopPerSecond, bool Dashed);

/// <summary>
/// Writes a log-log roofline picture (arithmetic intensity → GFLOP/s) as a self-contained SVG: one roof per ceiling
/// (min(peak, intensity × bandwidth)) and the measured points. No dependencies; the text is plain SVG 1.1.
/// </summary>
internal static class RooflineChart
{
    private const double Width = 860, Height = 560, Left = 80, Right = 300, Top = 50, Bottom = 60;
    private static readonly string[] Colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

    /// <summary>Renders the chart; <paramref name="ceilings"/> must not be empty; each point's "% of roof" is against the first.</summary>
    public static string Render(string title, IReadOnlyList<RooflineCeiling> ceilings, IReadOnlyList<RooflinePoint> points)
    {
        if (ceilings.Count == 0) throw new ArgumentException("At least one ceiling is needed.", nameof(ceilings));
        var valid = points.Where(p => p.FlopPerByte > 0 && p.GFlopPerSecond > 0 && double.IsFinite(p.FlopPerByte) && double.IsFinite(p.GFlopPerSecond)).ToList();
        double peak = ceilings.Max(c => c.FmaGFlopPerSecond);
        double ridge = ceilings.Max(c => c.FmaGFlopPerSecond / c.ReadGBPerSecond);
        double xMin = Math.Pow(10, Math.Floor(Math.Log10(Math.Min(0.1, valid.Count > 0 ? valid.Min(p => p.FlopPerByte) : 1))));
        double xMax = Math.Pow(10, Math.Ceiling(Math.Log10(Math.Max(ridge * 10, valid.Count > 0 ? valid.Max(p => p.FlopPerByte) * 2 : 1))));
        double lowest = Math.Min(ceilings.Min(c => xMin * c.ReadGBPerSecond), valid.Count > 0 ? valid.Min(p => p.GFlopPerSecond) : peak);
        double yMin = Math.Pow(10, Math.Floor(Math.Log10(lowest)));
        double yMax = Math.Pow(10, Math.Ceiling(Math.Log10(peak * 1.5)));
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double X(double v) => Left + (Math.Log10(v) - Math.Log10(xMin)) / (Math.Log10(xMax) - Math.Log10(xMin)) * plotW;
        double Y(double v) => Top + plotH - (Math.Log10(v) - Math.Log10(yMin)) / (Math.Log10(yMax) - Math.Log10(yMin)) * plotH;

        var s = new StringBuilder();
        s.Append(F($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">\n"));
        s.Append(F($"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>\n"));
        s.Append(F($"<text x=\"{Left}\" y=\"28\" font-size=\"15\" font-weight=\"bold\">{Escape(title)}</text>\n"));

        // Grid and axis labels at every decade.
        for (double v = xMin; v <= xMax * 1.0001; v *= 10)
        {
            s.Append(F($"<line x1=\"{X(v):F1}\" y1=\"{Top}\" x2=\"{X(v):F1}\" y2=\"{Top + plotH}\" stroke=\"#ddd\"/>\n"));
            s.Append(F($"<text x=\"{X(v):F1}\" y=\"{Top + plotH + 18}\" text-anchor=\"middle\">{Number(v)}</text>\n"));
        }
        for (double v = yMin; v <= yMax * 1.0001; v *= 10)
        {
            s.Append(F($"<line x1=\"{Left}\" y1=\"{Y(v):F1}\" x2=\"{Left + plotW}\" y2=\"{Y(v):F1}\" stroke=\"#ddd\"/>\n"));
            s.Append(F($"<text x=\"{Left - 6}\" y=\"{Y(v) + 4:F1}\" text-anchor=\"end\">{Number(v)}</text>\n"));
        }
        s.Append(F($"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotW}\" height=\"{plotH}\" fill=\"none\" stroke=\"#333\"/>\n"));
        s.Append(F($"<text x=\"{Left + plotW / 2}\" y=\"{Height - 15}\" text-anchor=\"middle\">arithmetic intensity (FLOP per byte read)</text>\n"));
        s.Append(F($"<text x=\"18\" y=\"{Top + plotH / 2}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {Top + plotH / 2})\">GFLOP/s</text>\n"));

        // Roofs: intensity × bandwidth up to the ridge, then the FMA peak.
        for (int k = 0; k < ceilings.Count; k++)
        {
            RooflineCeiling c = ceilings[k];
            double r = c.FmaGFlopPerSecond / c.ReadGBPerSecond;
            double x0 = Math.Max(xMin, yMin / c.ReadGBPerSecond);
            string dash = c.Dashed ? " stroke-dasharray=\"6 4\"" : "";
            s.Append(F($"<polyline fill=\"none\" stroke=\"#333\" stroke-width=\"2\"{dash} points=\"{X(x0):F1},{Y(x0 * c.ReadGBPerSecond):F1} {X(r):F1},{Y(c.FmaGFlopPerSecond):F1} {X(xMax):F1},{Y(c.FmaGFlopPerSecond):F1}\"/>\n"));
            s.Append(F($"<text x=\"{X(xMax) - 4:F1}\" y=\"{Y(c.FmaGFlopPerSecond) + (k == 0 ? -6 : 15):F1}\" text-anchor=\"end\" fill=\"#333\">{Escape(c.Label)}: {c.FmaGFlopPerSecond:F0} GFLOP/s, {c.ReadGBPerSecond:F1} GB/s</text>\n"));
        }

        // Points, with a legend on the right (labels beside points collide at equal intensities).
        for (int i = 0; i < valid.Count; i++)
        {
            RooflinePoint p = valid[i];
            string color = Colors[i % Colors.Length];
            double attainable = Roofline.Attainable(p.FlopPerByte, ceilings[0].ReadGBPerSecond, ceilings[0].FmaGFlopPerSecond);
            s.Append(F($"<circle cx=\"{X(p.FlopPerByte):F1}\" cy=\"{Y(p.GFlopPerSecond):F1}\" r=\"5\" fill=\"{color}\" stroke=\"black\" stroke-width=\"0.5\"/>\n"));
            s.Append(F($"<text x=\"{X(p.FlopPerByte) + 7:F1}\" y=\"{Y(p.GFlopPerSecond) + 4:F1}\" fill=\"{color}\">{i + 1}</text>\n"));
            double ly = Top + 10 + i * 34;
            s.Append(F($"<circle cx=\"{Left + plotW + 16}\" cy=\"{ly:F1}\" r=\"5\" fill=\"{color}\"/>\n"));
            s.Append(F($"<text x=\"{Left + plotW + 26}\" y=\"{ly + 4:F1}\">{i + 1}. {Escape(p.Label)}</text>\n"));
            s.Append(F($"<text x=\"{Left + plotW + 26}\" y=\"{ly + 19:F1}\" fill=\"#555\" font-size=\"11\">{p.GFlopPerSecond:G3} GFLOP/s, {p.FlopPerByte:G3} FLOP/B, {p.GFlopPerSecond / attainable:P0} of roof</text>\n"));
        }
        s.Append("</svg>\n");
        return s.ToString();
    }

    private static string Number(double v) => v >= 1 ? v.ToString("0", CultureInfo.InvariantCulture) : v.ToString("0.###", CultureInfo.InvariantCulture);

    private static string F(FormattableString f) => f.ToString(CultureInfo.InvariantCulture);

    private static string Escape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
