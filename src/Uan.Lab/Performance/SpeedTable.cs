using System.Globalization;
using System.Text;

namespace Uan.Lab.Performance;

/// <summary>Markdown for <see cref="SpeedCheck"/> results: one table of norms, one of training steps.</summary>
public static class SpeedTable
{
    /// <summary>The norms table: time, BatchNorm time, ratios (median of pairs, best to best) and memory kept for backward.</summary>
    public static string Norms(IEnumerable<SpeedRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| shape | layer | path | pass | ms (median) | BatchNorm ms | ratio to BatchNorm | best / best | kept for backward |");
        sb.AppendLine("|---|---|---|---|---:|---:|---:|---:|---:|");
        var list = rows.ToList();
        foreach (var r in list)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Shape} | {r.Name} | {PathOf(r.Name, r.Fused)} | {(r.Backward ? "fwd+bwd" : "fwd")} | {r.Milliseconds:F1} | {r.BatchNormMilliseconds:F1} | {r.Ratio:F2}× | {r.BestRatio:F2}× | {Kept(r)} |"));
        foreach (var r in list.Where(r => Unstable(r.Ratio, r.BestRatio)))
            sb.AppendLine().Append(string.Create(CultureInfo.InvariantCulture,
                $"Warning: unstable timings for {r.Name} ({PathOf(r.Name, r.Fused)}) at {r.Shape}: the median of the paired ratios is {r.Ratio:F2}× BatchNorm, the best time to the best BatchNorm time {r.BestRatio:F2}×; other load or page faults moved the times, so neither is the layer's cost (more --repeats on a quieter machine).")).AppendLine();
        return sb.ToString();
    }

    /// <summary>
    /// Whether two estimates of the same ratio disagree by more than <paramref name="factor"/> either way (or one is
    /// not a positive number): then the timings, not the layer, decide the numbers.
    /// </summary>
    public static bool Unstable(double a, double b, double factor = 1.5) =>
        !(a > 0 && b > 0 && double.IsFinite(a) && double.IsFinite(b)) || Math.Max(a, b) / Math.Min(a, b) > factor;

    /// <summary>
    /// The training-step table. Its ratio is that of the two time columns as printed (rounded to 0.1 ms), so the row
    /// reads consistently; where the median of the paired ratios (robust to a load that drifts) disagrees with it,
    /// a warning line below the table gives both.
    /// </summary>
    public static string Steps(IEnumerable<StepRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| model | norm at conv2 | step ms (median) | BatchNorm step ms (median) | ratio |");
        sb.AppendLine("|---|---|---:|---:|---:|");
        var list = rows.ToList();
        foreach (var r in list)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Model} | {r.Norm} | {r.Milliseconds:F1} | {r.BatchNormMilliseconds:F1} | {PrintedRatio(r):F2}× |"));
        foreach (var r in list.Where(r => Unstable(PrintedRatio(r), r.Ratio)))
            sb.AppendLine().Append(string.Create(CultureInfo.InvariantCulture,
                $"Warning: unstable timings for the {r.Model} step with {r.Norm}: the ratio of the median times is {PrintedRatio(r):F2}×, the median of the paired ratios {r.Ratio:F2}×; other load moved the times (more --step-repeats on a quieter machine).")).AppendLine();
        return sb.ToString();
    }

    /// <summary>The ratio of a step row's two times as the table prints them (0.1 ms).</summary>
    public static double PrintedRatio(StepRow r)
    {
        double Printed(double ms) => double.Parse(ms.ToString("F1", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        double bn = Printed(r.BatchNormMilliseconds);
        return bn > 0 ? Printed(r.Milliseconds) / bn : double.NaN;
    }

    /// <summary>
    /// The path a layer ran on, as the table and the progress lines name it: TorchSharp's own modules (BatchNorm,
    /// GroupNorm, LayerNorm) have one, "native"; UAN and MN have the fused kernels and the tensor-op reference.
    /// </summary>
    public static string PathOf(string name, bool fused) =>
        name.StartsWith("UAN", StringComparison.Ordinal) || name.StartsWith("MixtureNorm", StringComparison.Ordinal)
            ? (fused ? "fused" : "tensor-op")
            : "native";

    static string Kept(SpeedRow r) => r.KeptBytes is long b
        ? string.Create(CultureInfo.InvariantCulture, $"{b / 1048576.0:F1} MB ({r.KeptInputs:F2}× input)")
        : "n/a";
}
