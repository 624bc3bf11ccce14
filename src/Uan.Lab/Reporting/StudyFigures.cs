using System.Globalization;
using ScottPlot;
using Uan.Lab.Training;

namespace Uan.Lab.Reporting;

/// <summary>
/// The study's figures (ScottPlot): test accuracy per epoch, validation accuracy per step and gradient variance per
/// epoch, one panel per sub-grid with one line per arm (mean over seeds, min–max band); and test accuracy against
/// batch size for the arms run at two batch sizes.
/// </summary>
public static class StudyFigures
{
    /// <summary>Test accuracy per epoch.</summary>
    public const string TestAccuracyFile = "study-test-accuracy.png";
    /// <summary>Validation accuracy per training step.</summary>
    public const string ValidationFile = "study-validation.png";
    /// <summary>Gradient variance per epoch.</summary>
    public const string GradientFile = "study-gradient-variance.png";
    /// <summary>Test accuracy against batch size.</summary>
    public const string BatchSizeFile = "study-batch-size.png";
    /// <summary>Target test accuracy of the AdaMatch grids against training steps.</summary>
    public const string AdaptationFile = "study-adaptation.png";

    private const int PanelWidth = 760, PanelHeight = 500;
    // Taller, for the legend below the data (up to six entries).
    private const int AdaptationPanelHeight = 720;

    /// <summary>Writes the figures that have data into <paramref name="dir"/> and returns their paths.</summary>
    public static IReadOnlyList<string> Save(Study study, string dir)
    {
        Directory.CreateDirectory(dir);
        var written = new List<string>();
        void Write(string file, byte[]? png)
        {
            if (png is null) return;
            var path = Path.Combine(dir, file);
            PanelGrid.Save(path, png);
            written.Add(path);
        }
        var colors = ArmColors(study);
        Write(TestAccuracyFile, PerSubGrid(study, colors, "Test accuracy per epoch (mean over seeds, band = min–max)",
            "epoch", "test accuracy (%)", integerX: true,
            r => r.Epochs.Select(e => ((double)e.Epoch, 100 * e.TestAccuracy))));
        Write(ValidationFile, PerSubGrid(study, colors, "Validation accuracy during training (mean over seeds, band = min–max)",
            "training step", "validation accuracy (%)", integerX: false,
            r => Convergence.Points(r).Select(p => ((double)p.Step, 100 * p.Accuracy))));
        Write(GradientFile, PerSubGrid(study, colors,
            "Gradient variance at epoch ends, paper's definition, mean over tensors (mean over seeds, band = min–max)",
            "epoch", "gradient variance (mean over tensors)", integerX: true,
            r => r.Epochs.Where(e => e.Gradient is not null).Select(e => ((double)e.Epoch, e.Gradient!.PaperMean))));
        Write(BatchSizeFile, BatchSize(study, colors));
        Write(AdaptationFile, Adaptation(study));
        return written;
    }

    /// <summary>One colour per arm label, the same in every figure.</summary>
    private static Dictionary<string, Color> ArmColors(Study study)
    {
        var palette = new ScottPlot.Palettes.Category10();
        var labels = study.SubGrids.SelectMany(s => s.Arms).Select(a => a.Label).Distinct()
            .OrderBy(Study.ArmRank).ThenBy(l => l, StringComparer.Ordinal).ToList();
        return labels.Select((l, i) => (l, palette.GetColor(i))).ToDictionary(p => p.l, p => p.Item2);
    }

    /// <summary>Larger fonts than ScottPlot's defaults, so the ticks read at the size the figures are shown.</summary>
    internal static void Style(Plot plot, string title, string xLabel, string yLabel)
    {
        plot.Title(title, size: 17);
        plot.XLabel(xLabel, size: 16);
        plot.YLabel(yLabel, size: 16);
        plot.Axes.Bottom.TickLabelStyle.FontSize = 14;
        plot.Axes.Left.TickLabelStyle.FontSize = 14;
        plot.Legend.FontSize = 14;
    }

    private static byte[]? PerSubGrid(Study study, Dictionary<string, Color> colors, string title, string xLabel,
        string yLabel, bool integerX, Func<RunResults, IEnumerable<(double X, double Value)>> points)
    {
        var panels = new List<Plot?>();
        foreach (var sub in study.SubGrids)
        {
            var plot = new Plot();
            bool any = false;
            foreach (var arm in sub.Arms)
            {
                var series = LearningCurves.Aggregate(arm.Runs.SelectMany(r => points(r.Results)));
                if (series.Epochs.Length == 0) continue;
                any = true;
                LearningCurves.AddCurve(plot, series, colors[arm.Label], $"{arm.Label} (n={arm.Runs.Count})", band: arm.Runs.Count > 1);
            }
            if (!any) continue;
            Style(plot, $"{sub.Grid}: {sub.Short}", xLabel, yLabel);
            if (integerX) plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
            // Outside the data area: inside, the legend covers whichever curves reach its corner.
            plot.ShowLegend(Edge.Right);
            panels.Add(plot);
        }
        return panels.Count == 0 ? null : PanelGrid.Render(panels, Math.Min(2, panels.Count), PanelWidth, PanelHeight, title);
    }

    /// <summary>
    /// One panel per AdaMatch grid: target test accuracy (%) against training steps, one line per arm (mean over
    /// seeds, min–max band), the same colour for an arm in every panel, and twice chance as a dotted line (the
    /// grids' targets have 10 classes).
    /// </summary>
    private static byte[]? Adaptation(Study study)
    {
        var palette = new ScottPlot.Palettes.Category10();
        var colors = study.AdaMatch.SelectMany(t => t.Table.Groups).Select(g => g.Label).Distinct()
            .Select((l, i) => (l, palette.GetColor(i))).ToDictionary(p => p.l, p => p.Item2);
        var panels = new List<Plot?>();
        foreach (var (grid, _, table) in study.AdaMatch)
        {
            var plot = new Plot();
            bool any = false;
            foreach (var g in table.Groups)
            {
                var series = AdaMatchTable.Aggregate(g, m => m.TargetTest.Accuracy);
                if (series.Epochs.Length == 0) continue;
                any = true;
                LearningCurves.AddCurve(plot, series, colors[g.Label], $"{g.Label} (n={g.Runs.Count})", band: g.Runs.Count > 1);
            }
            if (!any) continue;
            var twice = plot.Add.HorizontalLine(20);
            twice.LinePattern = LinePattern.Dotted;
            twice.Color = Colors.Gray;
            twice.LegendText = "twice chance (20 %)";
            Style(plot, grid, "training step", "target test accuracy (%)");
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
            // Below the data, one entry per line: the input-norm labels are long, and a legend on the right took
            // most of the panel's width, squeezing the data area of the panel with the most arms.
            plot.ShowLegend(Edge.Bottom);
            plot.Legend.Orientation = Orientation.Vertical;
            panels.Add(plot);
        }
        return panels.Count == 0 ? null : PanelGrid.Render(panels, Math.Min(2, panels.Count), PanelWidth, AdaptationPanelHeight,
            "AdaMatch: target accuracy per step (mean over seeds, band = min–max)");
    }

    private static byte[]? BatchSize(Study study, Dictionary<string, Color> colors)
    {
        var panels = new List<Plot?>();
        var groups = study.SubGrids.GroupBy(s => (s.Dataset, s.Model, s.LearningRate))
            .Where(g => g.Select(s => s.BatchSize).Distinct().Count() >= 2);
        foreach (var g in groups)
            foreach (var metric in new[] { StudyReport.TestLast, StudyReport.TestBestVal })
            {
                var batches = g.Select(s => s.BatchSize).Distinct().Order().ToList();
                var labels = g.SelectMany(s => s.Arms).Select(a => a.Label).Distinct()
                    .Where(l => g.Count(s => s.Arm(l) is not null) >= 2)
                    .OrderBy(Study.ArmRank).ThenBy(l => l, StringComparer.Ordinal).ToList();
                if (labels.Count == 0) continue;
                var plot = new Plot();
                for (int li = 0; li < labels.Count; li++)
                {
                    var label = labels[li];
                    // A small horizontal offset per arm keeps the min–max bars apart.
                    double offset = (li - (labels.Count - 1) / 2.0) * 0.06;
                    var xs = new List<double>();
                    var means = new List<double>();
                    foreach (var (b, bi) in batches.Select((b, i) => (b, i)))
                    {
                        var arm = g.FirstOrDefault(s => s.BatchSize == b)?.Arm(label);
                        if (arm is null) continue;
                        var values = arm.Values(metric.Value).Values.Select(v => 100 * v).ToList();
                        if (values.Count == 0) continue;
                        double x = bi + offset;
                        xs.Add(x);
                        means.Add(values.Average());
                        var bar = plot.Add.Line(x, values.Min(), x, values.Max());
                        bar.Color = colors[label];
                        bar.LineWidth = 2;
                        var dots = plot.Add.ScatterPoints(values.Select(_ => x).ToArray(), values.ToArray());
                        dots.Color = colors[label].WithAlpha(0.6);
                        dots.MarkerSize = 6;
                    }
                    if (xs.Count == 0) continue;
                    var line = plot.Add.Scatter(xs.ToArray(), means.ToArray());
                    line.Color = colors[label];
                    line.LineWidth = 2;
                    line.MarkerSize = 10;
                    line.LegendText = label;
                }
                Style(plot, string.Create(CultureInfo.InvariantCulture, $"{g.Key.Dataset}, lr {g.Key.LearningRate:G}: {metric.Name}"),
                    "training batch size", "test accuracy (%)");
                plot.Axes.Bottom.SetTicks(batches.Select((_, i) => (double)i).ToArray(),
                    batches.Select(b => b.ToString(CultureInfo.InvariantCulture)).ToArray());
                plot.Axes.SetLimitsX(-0.5, batches.Count - 0.5);
                plot.ShowLegend(Edge.Right);
                panels.Add(plot);
            }
        return panels.Count == 0 ? null : PanelGrid.Render(panels, Math.Min(2, panels.Count), PanelWidth, PanelHeight,
            "Test accuracy against batch size (line = mean over seeds, dots = seeds, bar = min–max)");
    }
}
