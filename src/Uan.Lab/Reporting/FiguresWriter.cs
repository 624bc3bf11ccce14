using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;
using Uan.Lab.Data;
using Uan.Lab.Diagnostics;
using Uan.Lab.Training;

namespace Uan.Lab.Reporting;

/// <summary>Settings of <see cref="FiguresWriter.Write"/>.</summary>
public sealed record FiguresOptions
{
    /// <summary>Points per t-SNE (a class-stratified part of each snapshot, the same for every run); at most the snapshot's.</summary>
    public int TsnePoints { get; init; } = SnapshotRecorder.MaxPoints;
    /// <summary>t-SNE perplexity (capped at (points − 1) / 3 for small point counts).</summary>
    public double Perplexity { get; init; } = 30;
    /// <summary>t-SNE iterations.</summary>
    public int TsneIterations { get; init; } = 1000;
    /// <summary>Neighbours of the kNN accuracy measured in each embedding.</summary>
    public int Knn { get; init; } = 5;
    /// <summary>Channels of the activation figure; null = the paper's.</summary>
    public IReadOnlyList<int>? Channels { get; init; }
}

/// <summary>One t-SNE panel: which snapshot, how well the classes separate in the embedding, and how long it took.</summary>
/// <param name="Run">Run label.</param>
/// <param name="Epoch">Epoch of the snapshot.</param>
/// <param name="Epochs">Configured epochs of the run.</param>
/// <param name="Points">Points embedded.</param>
/// <param name="Perplexity">Perplexity used.</param>
/// <param name="KnnAccuracy">Leave-one-out kNN accuracy of the class labels in the 2-D embedding.</param>
/// <param name="Seconds">Wall time of the embedding.</param>
/// <param name="Image">File name of the PNG holding the panel.</param>
public sealed record TsneResult(string Run, int Epoch, int Epochs, int Points, double Perplexity, double KnnAccuracy,
    double Seconds, string Image);

/// <summary>What <see cref="FiguresWriter.Write"/> produced.</summary>
/// <param name="Written">Files written.</param>
/// <param name="Tsne">One row per t-SNE panel.</param>
/// <param name="Warnings">Runs or files skipped, one message each.</param>
public sealed record FiguresSummary(IReadOnlyList<string> Written, IReadOnlyList<TsneResult> Tsne, IReadOnlyList<string> Warnings);

/// <summary>
/// The figures behind <c>uan figures DIR</c>, made from files alone: per run, a t-SNE of every feature snapshot
/// (coloured by class, the kNN accuracy in each title); the activation-distribution figure with one row per run; the
/// gradient-variance figure when runs hold <c>gradient-probe.json</c>; and <c>figures.md</c> / <c>figures.json</c>
/// with the kNN table.
/// </summary>
public static class FiguresWriter
{
    /// <summary>Name of the Markdown summary.</summary>
    public const string MarkdownFileName = "figures.md";
    /// <summary>Name of the JSON table.</summary>
    public const string JsonFileName = "figures.json";

    private sealed record RunInfo(string Dir, string Label);

    /// <summary>The configuration of an AdaMatch run folder, or null for other runs (and unreadable files).</summary>
    private static Adaptation.AdaMatchConfig? AdaMatchConfigOf(string runDir)
    {
        string path = Path.Combine(runDir, RunResults.FileName);
        if (!File.Exists(path) || !Adaptation.AdaMatchResults.IsAdaMatchFile(path)) return null;
        try { return Adaptation.AdaMatchResults.Load(path).Config; }
        catch (InvalidDataException) { return null; }
    }

    /// <summary>
    /// Seed-independent groups for the gradient figure: AdaMatch runs of one configuration but for the seed share
    /// their table label (as in <c>uan report</c>; " [2]", " [3]" when different configurations share a label);
    /// other runs get null (each is its own line).
    /// </summary>
    internal static string?[] SeedGroups(IReadOnlyList<Adaptation.AdaMatchConfig?> configs)
    {
        var keys = configs.Select(c => c is null ? null : AdaMatchGroup.KeyOf(c)).ToList();
        var distinct = keys.Where(k => k is not null).Distinct().ToList();
        return keys.Select(k =>
        {
            if (k is null) return null;
            string label = AdaMatchGroup.LabelOf(k);
            int index = distinct.Where(d => AdaMatchGroup.LabelOf(d!) == label).ToList().IndexOf(k);
            return index == 0 ? label : $"{label} [{index + 1}]";
        }).ToArray();
    }

    /// <summary>
    /// Finds the runs in <paramref name="dir"/> (the folder itself, or any folder below it, holding snapshots or a
    /// gradient-probe file), writes the figures into <paramref name="outDir"/> and returns what it wrote;
    /// <paramref name="progress"/> receives one line per step (t-SNE of 2,000 points takes minutes).
    /// </summary>
    public static FiguresSummary Write(string dir, string outDir, FiguresOptions? options = null, Action<string>? progress = null)
    {
        var o = options ?? new FiguresOptions();
        if (o.TsnePoints < 4) throw new ArgumentException($"t-SNE needs at least 4 points, got {o.TsnePoints}");
        var runs = FindRuns(dir);
        var warnings = new List<string>();
        var written = new List<string>();
        var tsne = new List<TsneResult>();
        Directory.CreateDirectory(outDir);

        foreach (var run in runs)
        {
            var files = SnapshotFiles.FeatureFiles(run.Dir);
            if (files.Count == 0) continue;
            var panels = new List<Plot?>();
            string image = $"tsne_{PanelGrid.FileSafe(run.Label)}.png";
            foreach (var file in files)
            {
                FeatureSnapshot snap;
                try { snap = SnapshotFiles.LoadFeatures(file); }
                catch (InvalidDataException e) { warnings.Add(e.Message); continue; }
                var (x, labels) = Subsample(snap, o.TsnePoints);
                int n = labels.Length;
                if (n < 4) { warnings.Add($"{file}: {n} points, too few for t-SNE"); continue; }
                double perplexity = Math.Min(o.Perplexity, (n - 1) / 3.0);
                progress?.Invoke($"t-SNE {run.Label} epoch {snap.Epoch}/{snap.Epochs}: {n} points, perplexity {perplexity:0.#}...");
                var clock = Stopwatch.StartNew();
                using var input = x;
                using var embedding = Tsne.Embed(input, new TsneOptions { Perplexity = perplexity, Iterations = o.TsneIterations });
                clock.Stop();
                double knn = Tsne.KnnAccuracy(embedding, labels, Math.Min(o.Knn, n - 1));
                progress?.Invoke(string.Create(CultureInfo.InvariantCulture,
                    $"  done in {clock.Elapsed.TotalSeconds:F1} s; kNN-{o.Knn} accuracy {100 * knn:F1} %"));
                tsne.Add(new TsneResult(run.Label, snap.Epoch, snap.Epochs, n, perplexity, knn, clock.Elapsed.TotalSeconds, image));
                panels.Add(TsnePanel(embedding, labels, string.Create(CultureInfo.InvariantCulture,
                    $"{run.Label}, epoch {snap.Epoch}/{snap.Epochs}: kNN-{o.Knn} acc {100 * knn:F1}%")));
            }
            if (panels.Count == 0) continue;
            var path = Path.Combine(outDir, image);
            PanelGrid.Save(path, PanelGrid.Render(panels, Math.Min(4, panels.Count), 480, 460,
                $"t-SNE of the latent features of the fixed test subset: {run.Label}"));
            written.Add(path);
        }

        var activations = new List<ActivationSet>();
        foreach (var run in runs)
        {
            var file = SnapshotFiles.ActivationFiles(run.Dir).LastOrDefault();
            if (file is null) continue;
            try { activations.Add(SnapshotFiles.LoadActivations(file).Set with { Label = run.Label }); }
            catch (InvalidDataException e) { warnings.Add(e.Message); }
        }
        if (activations.Count > 0)
        {
            progress?.Invoke($"activation distributions: {activations.Count} run(s)");
            var path = Path.Combine(outDir, "activations.png");
            PanelGrid.Save(path, ActivationDistributions.Render(activations, o.Channels));
            written.Add(path);
        }

        var probed = new List<(RunInfo Run, IReadOnlyList<GradientProbeRecord> Records)>();
        foreach (var run in runs.Where(r => File.Exists(Path.Combine(r.Dir, GradientProbeLog.FileName))))
        {
            try { probed.Add((run, GradientProbeLog.Load(run.Dir))); }
            catch (InvalidDataException e) { warnings.Add(e.Message); }
        }
        var groups = SeedGroups(probed.Select(p => AdaMatchConfigOf(p.Run.Dir)).ToList());
        var gradients = probed.Select((p, i) => new GradientVarianceSeries(p.Run.Label, p.Records, groups[i])).ToList();
        if (gradients.Any(g => g.Records.Count > 0))
        {
            progress?.Invoke($"gradient variance: {gradients.Count} run(s)");
            var path = Path.Combine(outDir, "gradient-variance.png");
            GradientVarianceFigure.Save(path, gradients.Where(g => g.Records.Count > 0).ToList());
            written.Add(path);
        }

        var json = Path.Combine(outDir, JsonFileName);
        AtomicFile.WriteAllBytes(json, JsonSerializer.SerializeToUtf8Bytes(tsne, RunResults.Json));
        var md = Path.Combine(outDir, MarkdownFileName);
        AtomicFile.WriteAllBytes(md, new UTF8Encoding(false).GetBytes(Markdown(dir, runs, tsne, written, warnings, o)));
        written.Add(json);
        written.Add(md);
        return new FiguresSummary(written, tsne, warnings);
    }

    private static List<RunInfo> FindRuns(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"no such folder: {dir}");
        static bool IsRun(string d) => Directory.Exists(Path.Combine(d, SnapshotFiles.FolderName))
                                       || File.Exists(Path.Combine(d, GradientProbeLog.FileName));
        var dirs = new[] { dir }.Concat(Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories))
            .Where(d => Path.GetFileName(d) != SnapshotFiles.FolderName && IsRun(d))
            .Order(StringComparer.Ordinal).ToList();
        var runs = dirs.Select(d =>
        {
            string label = Path.GetFileName(Path.GetFullPath(d).TrimEnd(Path.DirectorySeparatorChar));
            var results = Path.Combine(d, RunResults.FileName);
            if (File.Exists(results))
                try { label = RunResults.Load(d).Config.Label ?? label; } catch (InvalidDataException) { }
            return new RunInfo(d, label);
        }).ToList();
        // Labels name the rows and files; runs sharing one (several lr or seeds) fall back to their folder names.
        return runs.GroupBy(r => r.Label).SelectMany(g => g.Count() == 1 ? g
            : g.Select(r => r with { Label = Path.GetRelativePath(dir, r.Dir).Replace(Path.DirectorySeparatorChar, '/') })).ToList();
    }

    /// <summary>
    /// The first <paramref name="points"/> of the snapshot in a class-stratified way (each class its proportional share,
    /// taken in snapshot order), so runs with the same snapshot points are embedded on the same subset.
    /// </summary>
    public static (TorchSharp.torch.Tensor Features, long[] Labels) Subsample(FeatureSnapshot snap, int points)
    {
        if (points >= snap.Count) return (snap.ToTensor(), snap.Labels);
        int classes = (int)snap.Labels.DefaultIfEmpty(0).Max() + 1;
        var counts = new long[classes];
        foreach (var l in snap.Labels) counts[l]++;
        var share = ImageDataset.ProportionalAllocation(counts, points);
        var taken = new long[classes];
        var rows = new List<long>();
        for (int i = 0; i < snap.Count; i++)
        {
            long c = snap.Labels[i];
            if (taken[c] < share[c]) { taken[c]++; rows.Add(i); }
        }
        using var all = snap.ToTensor();
        using var index = TorchSharp.torch.tensor(rows.ToArray());
        return (all.index_select(0, index), rows.Select(r => snap.Labels[r]).ToArray());
    }

    private static Plot TsnePanel(TorchSharp.torch.Tensor embedding, long[] labels, string title)
    {
        var xy = embedding.to(TorchSharp.torch.ScalarType.Float64).data<double>().ToArray();
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        foreach (var cls in labels.Distinct().Order())
        {
            var idx = Enumerable.Range(0, labels.Length).Where(i => labels[i] == cls).ToArray();
            var dots = plot.Add.ScatterPoints(idx.Select(i => xy[2 * i]).ToArray(), idx.Select(i => xy[2 * i + 1]).ToArray());
            dots.Color = palette.GetColor((int)cls).WithAlpha(0.8);
            dots.MarkerSize = 4;
            if (cls < 20) dots.LegendText = cls.ToString(CultureInfo.InvariantCulture);
        }
        plot.Title(title, size: 13);
        plot.Axes.Left.TickLabelStyle.IsVisible = false;
        plot.Axes.Bottom.TickLabelStyle.IsVisible = false;
        // Outside the axes: inside, the legend covers whichever cluster lands in its corner.
        if (labels.Distinct().Count() <= 20) plot.ShowLegend(Edge.Right);
        return plot;
    }

    private static string Markdown(string dir, IReadOnlyList<RunInfo> runs, IReadOnlyList<TsneResult> tsne,
        IReadOnlyList<string> written, IReadOnlyList<string> warnings, FiguresOptions o)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.Append("# UAN figures\n\nRuns read from `").Append(RunCollection.DisplayPath(dir)).Append("`: ")
            .Append(runs.Count == 0 ? "none with snapshots or gradient probes" : string.Join(", ", runs.Select(r => $"`{r.Label}`")))
            .Append(".\n\n");
        if (tsne.Count > 0)
        {
            md.Append("## t-SNE of the latent features\n\n")
                .Append(string.Create(inv, $"Exact t-SNE ({o.TsneIterations} iterations) of the same class-stratified test points for every run; "))
                .Append(string.Create(inv, $"kNN-{o.Knn} accuracy = leave-one-out {o.Knn}-nearest-neighbour accuracy of the class labels in the 2-D embedding.\n\n"))
                .Append("| run | epoch | points | perplexity | kNN accuracy (%) | t-SNE seconds |\n|---|---|---|---|---|---|\n");
            foreach (var t in tsne)
                md.Append(string.Create(inv, $"| {t.Run} | {t.Epoch}/{t.Epochs} | {t.Points} | {t.Perplexity:0.#} | {100 * t.KnnAccuracy:F1} | {t.Seconds:F1} |\n"));
            md.Append('\n');
        }
        foreach (var png in written.Where(p => p.EndsWith(".png", StringComparison.Ordinal)))
            md.Append("![").Append(Path.GetFileNameWithoutExtension(png)).Append("](").Append(Path.GetFileName(png)).Append(")\n\n");
        if (warnings.Count > 0)
        {
            md.Append("## Warnings\n\n");
            foreach (var w in warnings) md.Append("- ").Append(w).Append('\n');
        }
        return md.ToString();
    }
}
