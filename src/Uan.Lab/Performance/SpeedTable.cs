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
        foreach (var r in rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Shape} | {r.Name} | {Path(r)} | {(r.Backward ? "fwd+bwd" : "fwd")} | {r.Milliseconds:F1} | {r.BatchNormMilliseconds:F1} | {r.Ratio:F2}× | {r.BestRatio:F2}× | {Kept(r)} |"));
        return sb.ToString();
    }

    /// <summary>The training-step table.</summary>
    public static string Steps(IEnumerable<StepRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| model | norm at conv2 | step ms (median) | BatchNorm step ms | ratio |");
        sb.AppendLine("|---|---|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Model} | {r.Norm} | {r.Milliseconds:F1} | {r.BatchNormMilliseconds:F1} | {r.Ratio:F2}× |"));
        return sb.ToString();
    }

    // TorchSharp's own modules (BatchNorm, GroupNorm, LayerNorm) have one path; UAN and MN have the fused kernels and
    // the tensor-op reference.
    static string Path(SpeedRow r) =>
        r.Name.StartsWith("UAN", StringComparison.Ordinal) || r.Name.StartsWith("MixtureNorm", StringComparison.Ordinal)
            ? (r.Fused ? "fused" : "tensor-op")
            : "native";

    static string Kept(SpeedRow r) => r.KeptBytes is long b
        ? string.Create(CultureInfo.InvariantCulture, $"{b / 1048576.0:F1} MB ({r.KeptInputs:F2}× input)")
        : "n/a";
}
