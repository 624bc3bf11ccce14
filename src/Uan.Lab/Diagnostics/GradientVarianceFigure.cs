using System.Globalization;
using ScottPlot;
using Uan.Lab.Reporting;

namespace Uan.Lab.Diagnostics;

/// <summary>The gradient probes of one run, under the label its lines get (e.g. "AdaMatch+UAN").</summary>
/// <param name="RunLabel">Legend label of the run.</param>
/// <param name="Records">Its per-epoch probes (any domains and definitions).</param>
/// <param name="Group">
/// Runs with the same group (the same configuration but for the seed) share one line: the mean over runs of log₁₀ of
/// the statistic, with a min–max band; null = the run is its own group under <paramref name="RunLabel"/>.
/// </param>
public sealed record GradientVarianceSeries(string RunLabel, IReadOnlyList<GradientProbeRecord> Records, string? Group = null);

/// <summary>
/// The paper's gradient-stability figure (Fig. 5 layout): the max (left) and mean (right) over tensors of the
/// per-tensor gradient variance against epoch, one line per (group of runs, domain) — colour per group, solid for the
/// first domain ("source") and dashed for the others, a min–max band over the group's runs — on a log₁₀ y axis. One
/// row per gradient definition present.
/// </summary>
public static class GradientVarianceFigure
{
    /// <summary>
    /// Renders the figure for <paramref name="series"/>; <paramref name="definitions"/> limits the rows (null = every
    /// definition present, "paper" first). Non-positive or non-finite values are left out (no log). Returns PNG bytes.
    /// </summary>
    public static byte[] Render(IReadOnlyList<GradientVarianceSeries> series, IReadOnlyList<string>? definitions = null,
        int panelWidth = 620, int panelHeight = 420)
    {
        if (series.Count == 0 || series.All(s => s.Records.Count == 0))
            throw new ArgumentException("no gradient probes to plot", nameof(series));
        var defs = definitions?.ToList() ?? series.SelectMany(s => s.Records).Select(r => r.Definition).Distinct()
            .OrderBy(d => d == "paper" ? 0 : 1).ThenBy(d => d, StringComparer.Ordinal).ToList();
        var domains = series.SelectMany(s => s.Records).Select(r => r.Domain).Distinct()
            .OrderBy(d => d == "source" ? 0 : 1).ThenBy(d => d, StringComparer.Ordinal).ToList();
        var palette = new ScottPlot.Palettes.Category10();
        var panels = new List<Plot?>();
        foreach (var def in defs)
            foreach (var (statistic, pick) in new (string, Func<GradientProbeRecord, double>)[] { ("max", r => r.Max), ("mean", r => r.Mean) })
            {
                var plot = new Plot();
                string what = def == "paper" ? "d(Σ logits)/dθ" : def == "loss" ? "d(loss)/dθ" : def;
                plot.Title($"{statistic} over tensors of Var[{what}]", size: 14);
                plot.XLabel("epoch");
                plot.YLabel($"{statistic} gradient variance (log scale)");
                var groups = series.GroupBy(x => x.Group ?? x.RunLabel).ToList();
                for (int r = 0; r < groups.Count; r++)
                    for (int d = 0; d < domains.Count; d++)
                    {
                        // Per run: the last probe of each epoch; then per epoch over the group's runs.
                        var byEpoch = groups[r]
                            .SelectMany(run => run.Records.Where(x => x.Definition == def && x.Domain == domains[d])
                                .GroupBy(x => x.Epoch).Select(g => (Epoch: g.Key, Value: pick(g.Last()))))
                            .Where(p => p.Value > 0 && double.IsFinite(p.Value))
                            .GroupBy(p => p.Epoch).OrderBy(g => g.Key)
                            .Select(g => (Epoch: (double)g.Key, Logs: g.Select(p => Math.Log10(p.Value)).ToArray())).ToList();
                        if (byEpoch.Count == 0) continue;
                        var curve = new CurveSeries(byEpoch.Select(e => e.Epoch).ToArray(), byEpoch.Select(e => e.Logs.Average()).ToArray(),
                            byEpoch.Select(e => e.Logs.Min()).ToArray(), byEpoch.Select(e => e.Logs.Max()).ToArray());
                        int runs = groups[r].Count();
                        string legend = $"{groups[r].Key}{(runs > 1 ? $" (n={runs})" : "")} / {domains[d]}";
                        LearningCurves.AddCurve(plot, curve, palette.GetColor(r), legend, band: runs > 1);
                        if (d > 0 && plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().LastOrDefault() is { } line)
                            line.LinePattern = LinePattern.Dashed;
                    }
                plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
                plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
                {
                    IntegerTicksOnly = true,
                    MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                    LabelFormatter = y => "1e" + y.ToString("0", CultureInfo.InvariantCulture),
                };
                plot.ShowLegend(Edge.Bottom);   // below the axes: inside, it covers the upper (target) lines
                panels.Add(plot);
            }
        return PanelGrid.Render(panels, 2, panelWidth, panelHeight, "Gradient variance per epoch");
    }

    /// <summary>Renders and writes the figure to <paramref name="path"/> (temporary file, then rename).</summary>
    public static void Save(string path, IReadOnlyList<GradientVarianceSeries> series, IReadOnlyList<string>? definitions = null) =>
        PanelGrid.Save(path, Render(series, definitions));
}
