using ScottPlot;
using Uan.Lab.Training;

namespace Uan.Lab.Reporting;

/// <summary>One line of a learning-curve plot: a group's metric per epoch (or per training step), over its seeds.</summary>
/// <param name="Epochs">Epochs (or steps) that at least one run of the group finished: the x values.</param>
/// <param name="Mean">Mean over the runs that have the epoch.</param>
/// <param name="Min">Minimum over those runs.</param>
/// <param name="Max">Maximum over those runs.</param>
public sealed record CurveSeries(double[] Epochs, double[] Mean, double[] Min, double[] Max);

/// <summary>
/// Learning-curve PNGs per (dataset, model): test accuracy and train loss against epoch, one line per group (mean over
/// seeds) with a shaded min–max band when the group has several seeds; where runs recorded them, the training loss and
/// accuracy per step (<see cref="EpochMetrics.TrainPoints"/>) with the validation curve
/// (<see cref="EpochMetrics.ValPoints"/>) against the training step, and the validation curve alone.
/// </summary>
public sealed class LearningCurves
{
    /// <summary>Plots for the runs of <paramref name="runs"/>.</summary>
    public LearningCurves(RunCollection runs) => Runs = runs;

    /// <summary>The runs plotted.</summary>
    public RunCollection Runs { get; }

    /// <summary>Image width in pixels.</summary>
    public int Width { get; init; } = 1000;

    /// <summary>Image height in pixels.</summary>
    public int Height { get; init; } = 620;

    private sealed record Metric(string FileSuffix, string Title, string YLabel, Func<EpochMetrics, double> Value,
        Alignment LegendAt);

    private static readonly Metric[] Metrics =
    [
        new("test-accuracy", "test accuracy", "test accuracy (%)", m => 100 * m.TestAccuracy, Alignment.LowerRight),
        new("train-loss", "train loss", "train loss (cross-entropy)", m => m.TrainLoss, Alignment.UpperRight),
    ];

    /// <summary>
    /// The per-epoch mean, min and max of <paramref name="value"/> over the runs of <paramref name="group"/>. Epochs
    /// reached by only some runs use those runs, so a run still in progress does not hide the others' tails.
    /// </summary>
    public static CurveSeries Aggregate(RunGroup group, Func<EpochMetrics, double> value) =>
        Aggregate(group.Runs.SelectMany(r => r.Results.Epochs).Select(m => ((double)m.Epoch, value(m))));

    /// <summary>
    /// The mean, min and max of the finite values at each x of <paramref name="points"/> (every run's points
    /// together), in increasing x; an x with no finite value is left out.
    /// </summary>
    public static CurveSeries Aggregate(IEnumerable<(double X, double Value)> points)
    {
        var byX = points
            .GroupBy(p => p.X).OrderBy(g => g.Key)
            .Select(g => (X: g.Key, Values: g.Select(p => p.Value).Where(double.IsFinite).ToList()))
            .Where(e => e.Values.Count > 0)
            .ToList();
        return new CurveSeries(
            byX.Select(e => e.X).ToArray(),
            byX.Select(e => e.Values.Average()).ToArray(),
            byX.Select(e => e.Values.Min()).ToArray(),
            byX.Select(e => e.Values.Max()).ToArray());
    }

    /// <summary>
    /// Draws <paramref name="series"/> on <paramref name="plot"/> in the house style: a line of the mean (with markers
    /// up to 30 points, so a one-epoch run stays visible) and, when <paramref name="band"/>, a shaded min–max band.
    /// </summary>
    internal static void AddCurve(Plot plot, CurveSeries series, Color color, string legend, bool band)
    {
        if (band)
        {
            var fill = plot.Add.FillY(series.Epochs, series.Min, series.Max);
            fill.FillColor = color.WithAlpha(0.18);
            fill.LineWidth = 0;
        }
        var line = plot.Add.Scatter(series.Epochs, series.Mean);
        line.Color = color;
        line.LineWidth = 2;
        // Markers keep a one-epoch run visible; on long runs they would only clutter the line.
        line.MarkerSize = series.Epochs.Length <= 30 ? 5 : 0;
        line.LegendText = legend;
    }

    /// <summary>File suffix of the validation-curve figure (runs with validation points within epochs).</summary>
    public const string ValidationSuffix = "validation";

    /// <summary>File suffix of the per-step figure (runs with training points within epochs).</summary>
    public const string StepsSuffix = "steps";

    /// <summary>
    /// A training-step tick label a person can read: the integer below 1000 ("750"), thousands with a "k" and at most
    /// one decimal from 1000 on ("1k", "2.5k", "12k"), millions with an "M" ("1.2M").
    /// </summary>
    public static string StepLabel(double step)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        double a = Math.Abs(step);
        return a < 1000 ? Math.Round(step).ToString("0", c)
            : a < 1_000_000 ? (step / 1000).ToString("0.#", c) + "k"
            : (step / 1_000_000).ToString("0.#", c) + "M";
    }

    /// <summary>Integer step ticks labelled by <see cref="StepLabel"/>, at most about 8 of them.</summary>
    internal static void StepAxis(Plot plot) =>
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            IntegerTicksOnly = true, LabelFormatter = StepLabel, TargetTickCount = 8,
        };

    /// <summary>
    /// Writes two PNGs per (dataset, model), a per-step one when runs recorded training points
    /// (<see cref="EpochMetrics.TrainPoints"/>; results files from before them have none), and one of the validation
    /// curves when runs measured validation within epochs (<see cref="RunConfig.ValEvery"/>), into <paramref name="dir"/> (created if needed), each via a temporary
    /// file and a rename, and returns their paths. Experiments with no finished epoch get no plot.
    /// </summary>
    public IReadOnlyList<string> Save(string dir)
    {
        Directory.CreateDirectory(dir);
        var written = new List<string>();
        foreach (var experiment in Runs.Groups.GroupBy(g => (g.Key.Dataset, g.Key.Model)))
        {
            var groups = experiment.ToList();
            void Write(byte[]? png, string suffix)
            {
                if (png is null) return;
                var path = Path.Combine(dir, $"{FilePrefix(experiment.Key.Dataset, experiment.Key.Model)}{suffix}.png");
                AtomicFile.WriteAllBytes(path, png);
                written.Add(path);
            }
            foreach (var metric in Metrics)
                Write(Render(experiment.Key.Dataset, experiment.Key.Model, groups, metric), metric.FileSuffix);
            Write(RenderSteps(experiment.Key.Dataset, experiment.Key.Model, groups), StepsSuffix);
            Write(RenderValidation(experiment.Key.Dataset, experiment.Key.Model, groups), ValidationSuffix);
        }
        return written;
    }

    /// <summary>
    /// Training loss and accuracy per step (the windowed means of <see cref="EpochMetrics.TrainPoints"/>, solid), with
    /// the validation loss and accuracy (dashed, same colour) where the runs measured them within epochs, against the
    /// training step: one panel for the loss, one for the accuracy, mean over seeds with a min–max band, legend right
    /// of the axes. Null when no run has training points.
    /// </summary>
    private byte[]? RenderSteps(string dataset, string model, IReadOnlyList<RunGroup> groups)
    {
        if (!groups.Any(g => g.Runs.Any(r => r.Results.Epochs.Any(e => e.TrainPoints is { Count: > 0 })))) return null;
        var panels = new List<Plot?>();
        foreach (var (title, yLabel, train, val) in new (string, string, Func<TrainPoint, double>, Func<ValPoint, double>)[]
                 {
                     ("loss", "loss (cross-entropy)", p => p.Loss, p => p.Loss),
                     ("accuracy", "accuracy (%)", p => 100 * p.Accuracy, p => 100 * p.Accuracy),
                 })
        {
            var plot = new Plot();
            var palette = new ScottPlot.Palettes.Category10();
            for (int i = 0; i < groups.Count; i++)
            {
                var epochs = groups[i].Runs.SelectMany(r => r.Results.Epochs).ToList();
                string name = SeriesName(groups[i]);
                bool band = groups[i].Runs.Count > 1;
                var trainSeries = Aggregate(epochs.SelectMany(e => e.TrainPoints ?? []).Select(p => ((double)p.Step, train(p))));
                if (trainSeries.Epochs.Length > 0)
                    AddCurve(plot, trainSeries, palette.GetColor(i), $"{name} training", band);
                var valSeries = Aggregate(epochs.SelectMany(e => e.ValPoints ?? []).Select(p => ((double)p.Step, val(p))));
                if (valSeries.Epochs.Length > 0)
                {
                    AddCurve(plot, valSeries, palette.GetColor(i), $"{name} validation", band);
                    if (plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().LastOrDefault() is { } line)
                        line.LinePattern = LinePattern.Dashed;
                }
            }
            panels.Add(FinishStepPanel(plot, title, yLabel));
        }
        return PanelGrid.Render(panels, 2, Width, Height,
            FigureTitle($"{dataset} / {model}: training per step (solid: window means) and validation (dashed)", groups));
    }

    /// <summary>
    /// Validation accuracy and loss against the training step, from the runs' within-epoch validation points; null
    /// when no run has any.
    /// </summary>
    private byte[]? RenderValidation(string dataset, string model, IReadOnlyList<RunGroup> groups)
    {
        var panels = new List<Plot?>();
        foreach (var (title, yLabel, value) in new (string, string, Func<ValPoint, double>)[]
                 {
                     ("validation accuracy", "validation accuracy (%)", p => 100 * p.Accuracy),
                     ("validation loss", "validation loss (cross-entropy)", p => p.Loss),
                 })
        {
            var plot = new Plot();
            var palette = new ScottPlot.Palettes.Category10();
            bool any = false;
            for (int i = 0; i < groups.Count; i++)
            {
                var points = groups[i].Runs.SelectMany(r => r.Results.Epochs)
                    .SelectMany(e => e.ValPoints ?? []).Select(p => ((double)p.Step, value(p)));
                var series = Aggregate(points);
                if (series.Epochs.Length == 0) continue;
                any = true;
                AddCurve(plot, series, palette.GetColor(i), SeriesName(groups[i]), band: groups[i].Runs.Count > 1);
            }
            if (!any) return null;
            panels.Add(FinishStepPanel(plot, title, yLabel));
        }
        return PanelGrid.Render(panels, 2, Width, Height, FigureTitle($"{dataset} / {model}: validation during training", groups));
    }

    /// <summary>A group's legend entry: its name and number of runs.</summary>
    private static string SeriesName(RunGroup group) => $"{group.DisplayName} (n={group.Runs.Count})";

    /// <summary><paramref name="head"/>, and how the curves aggregate when some group has several seeds.</summary>
    private static string FigureTitle(string head, IReadOnlyList<RunGroup> groups) =>
        head + (groups.Any(g => g.Runs.Count > 1) ? " (mean over seeds, band = min–max)" : "");

    /// <summary>Styles a panel plotted against the training step, with its legend right of the axes; returns it.</summary>
    private static Plot FinishStepPanel(Plot plot, string title, string yLabel)
    {
        StudyFigures.Style(plot, title, "training step (batches since the start)", yLabel);
        StepAxis(plot);
        // Outside the data area: inside, the legend covers whichever curves reach its corner.
        plot.ShowLegend(Edge.Right);
        return plot;
    }

    private byte[]? Render(string dataset, string model, IReadOnlyList<RunGroup> groups, Metric metric)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        bool any = false;
        for (int i = 0; i < groups.Count; i++)
        {
            var group = groups[i];
            var series = Aggregate(group, metric.Value);
            if (series.Epochs.Length == 0) continue;
            any = true;
            AddCurve(plot, series, palette.GetColor(i), SeriesName(group), band: group.Runs.Count > 1);
        }
        if (!any) return null;

        StudyFigures.Style(plot, FigureTitle($"{dataset} / {model}: {metric.Title}", groups), "epoch", metric.YLabel);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.ShowLegend(metric.LegendAt);
        return plot.GetImage(Width, Height).GetImageBytes(ImageFormat.Png);
    }

    /// <summary>The start of the file names of one experiment's plots ("cifar10_shallow-cnn_").</summary>
    public static string FilePrefix(string dataset, string model) => $"{FileSafe(dataset)}_{FileSafe(model)}_";

    private static string FileSafe(string name)
    {
        var invalid = Path.GetInvalidFileNameChars();
        return new string(name.Select(c => invalid.Contains(c) || char.IsWhiteSpace(c) ? '-' : c).ToArray());
    }

}
