using ScottPlot;
using TorchSharp;
using Uan.Lab.Models;
using Uan.Lab.Reporting;
using static TorchSharp.torch;

namespace Uan.Lab.Diagnostics;

/// <summary>
/// One channel's univariate Gaussian mixture {λ_k, μ_k, σ²_k} as a norm layer holds it, for plotting against a
/// histogram of the activations it normalises.
/// </summary>
/// <param name="Weights">λ_k (the layer's values; see <see cref="ActivationDistributions.ReadMixtures"/>).</param>
/// <param name="Means">μ_k.</param>
/// <param name="Variances">σ²_k.</param>
public sealed record ChannelMixture(double[] Weights, double[] Means, double[] Variances)
{
    /// <summary>Number of components.</summary>
    public int Components => Weights.Length;

    /// <summary>λ_k N(x | μ_k, σ²_k) with the weights normalised to sum to 1 (so the sum is a density).</summary>
    public double ComponentDensity(int k, double x)
    {
        double total = Weights.Sum();
        double v = Variances[k], d = x - Means[k];
        return Weights[k] / total * Math.Exp(-d * d / (2 * v)) / Math.Sqrt(2 * Math.PI * v);
    }

    /// <summary>The mixture density Σ_k λ_k N(x | μ_k, σ²_k) (weights normalised).</summary>
    public double Density(double x)
    {
        double sum = 0;
        for (int k = 0; k < Components; k++) sum += ComponentDensity(k, x);
        return sum;
    }
}

/// <summary>
/// The conv2 pre-norm activations of one batch for some channels, with the mixture the norm layer holds for each
/// of them (null for a norm without one, such as BatchNorm: the figure then fits one Gaussian to the batch).
/// </summary>
/// <param name="Label">Row label (the run's norm label, e.g. "UAN").</param>
/// <param name="Norm">Norm spec of the layer.</param>
/// <param name="Channels">Channel indices, in the order of <paramref name="Values"/>.</param>
/// <param name="Values">Per channel, the activation values (all of the batch, or a fixed subsample of positions).</param>
/// <param name="Mixtures">Per channel, the layer's mixture, or null.</param>
public sealed record ActivationSet(string Label, string Norm, int[] Channels, float[][] Values, ChannelMixture?[] Mixtures);

/// <summary>
/// The paper's activation-distribution figure (spec Part B §4.1, "distribution.png"): per channel of conv2, a density
/// histogram of the pre-norm activations of one batch, overlaid with what the norm assumes about them — one Gaussian
/// N(mean, var) of the batch for BatchNorm (dashed), and for MixtureNorm / UAN each component λ_k N(x | μ_k, σ²_k)
/// dashed with their sum solid. One row per run (norm), one column per channel.
/// </summary>
public static class ActivationDistributions
{
    /// <summary>The channels the paper shows: 4, 12, 28, 32, 60, 96, 108.</summary>
    public static readonly int[] PaperChannels = [4, 12, 28, 32, 60, 96, 108];

    /// <summary>
    /// The per-channel mixtures of a norm layer, or null when it has none. UAN: λ = softmax(alpha), μ = mu,
    /// σ² = softplus(rho) + eps (<see cref="UnsupervisedAdaptiveNorm.GetMixture"/>; ReferenceCompat's λ ≡ 1, which the
    /// plot normalises to 1/K). MixtureNorm: the running EM mixture (<see cref="MixtureNorm.GetMixture"/>), the warm
    /// start of each training batch's fit and what eval uses for the responsibilities.
    /// </summary>
    public static ChannelMixture[]? ReadMixtures(nn.Module norm)
    {
        Tensor weights, means, variances;
        switch (norm)
        {
            case UnsupervisedAdaptiveNorm uan:
                (weights, means, variances) = uan.GetMixture();
                break;
            case MixtureNorm mn:
                var m = mn.GetMixture();
                (weights, means, variances) = (m.Weights, m.Means, m.Variances);
                break;
            default:
                return null;
        }
        using (weights)
        using (means)
        using (variances)
        {
            long k = weights.shape[0], c = weights.shape[1];
            double[] w = ToDoubles(weights), mu = ToDoubles(means), v = ToDoubles(variances);
            var result = new ChannelMixture[c];
            for (long ch = 0; ch < c; ch++)
                result[ch] = new ChannelMixture(
                    Column(w, k, c, ch), Column(mu, k, c, ch), Column(v, k, c, ch));
            return result;
        }
    }

    private static double[] ToDoubles(Tensor t)
    {
        using var d = t.detach().to(ScalarType.Float64).contiguous().cpu();
        return d.data<double>().ToArray();
    }

    private static double[] Column(double[] kc, long k, long c, long channel)
    {
        var col = new double[k];
        for (long i = 0; i < k; i++) col[i] = kc[i * c + channel];
        return col;
    }

    /// <summary>
    /// Runs <paramref name="model"/> in eval mode without gradients on <paramref name="batch"/> (network input) and
    /// returns conv2's pre-norm activations for <paramref name="channels"/> (null = all) with the conv2 norm's mixtures.
    /// When a channel has more than <paramref name="maxValuesPerChannel"/> values, the same seeded random positions
    /// (sample, row, column) are kept for every channel. The model's train/eval mode is restored.
    /// </summary>
    public static ActivationSet Collect(ShallowCnn model, Tensor batch, string label, IReadOnlyList<int>? channels = null,
        int maxValuesPerChannel = 8192, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (maxValuesPerChannel < 1) throw new ArgumentOutOfRangeException(nameof(maxValuesPerChannel), maxValuesPerChannel, "must be ≥ 1");
        var modes = model.modules().Select(m => (m, m.training)).Prepend((model, model.training)).ToList();
        try
        {
            model.eval();
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var pre = model.Conv2PreNorm(batch);
            long c = pre.shape[1];
            var chosen = (channels ?? Enumerable.Range(0, (int)c).ToArray()).ToArray();
            if (chosen.Any(ch => ch < 0 || ch >= c))
                throw new ArgumentException($"channels must lie in [0, {c - 1}], got {string.Join(", ", chosen)}", nameof(channels));
            var rows = pre.transpose(0, 1).reshape(c, -1)
                .index_select(0, tensor(chosen.Select(ch => (long)ch).ToArray(), device: pre.device));
            long n = rows.shape[1];
            if (n > maxValuesPerChannel)
            {
                var picked = ImageDatasetPermutation(n, seed).Take(maxValuesPerChannel).Order().ToArray();
                rows = rows.index_select(1, tensor(picked, device: rows.device));
            }
            var flat = rows.to(ScalarType.Float32).contiguous().cpu().data<float>().ToArray();
            long m = rows.shape[1];
            var values = chosen.Select((_, i) => flat.AsSpan((int)(i * m), (int)m).ToArray()).ToArray();
            var all = ReadMixtures(model.Conv2Norm);
            var mixtures = chosen.Select(ch => all?[ch]).ToArray();
            return new ActivationSet(label, model.Norm, chosen, values, mixtures);
        }
        finally
        {
            foreach (var (m, training) in modes) m.train(training);
        }
    }

    private static long[] ImageDatasetPermutation(long n, int seed) => Data.ImageDataset.Permutation(n, seed);

    /// <summary>
    /// The figure: one row per <paramref name="rows"/> entry, one column per channel of <paramref name="channels"/>
    /// (null = <see cref="PaperChannels"/> that every row has, else the first seven). Returns PNG bytes.
    /// </summary>
    public static byte[] Render(IReadOnlyList<ActivationSet> rows, IReadOnlyList<int>? channels = null, int bins = 60,
        int panelWidth = 380, int panelHeight = 300, string? title = null)
    {
        if (rows.Count == 0) throw new ArgumentException("no activations to plot", nameof(rows));
        var common = rows.Select(r => r.Channels.AsEnumerable()).Aggregate((a, b) => a.Intersect(b)).ToList();
        var cols = channels?.ToList()
                   ?? (PaperChannels.All(common.Contains) ? PaperChannels.ToList() : common.Take(PaperChannels.Length).ToList());
        if (cols.Count == 0) throw new ArgumentException("the rows share no channel", nameof(rows));
        var panels = new List<Plot?>();
        foreach (var row in rows)
            for (int c = 0; c < cols.Count; c++)
            {
                int i = Array.IndexOf(row.Channels, cols[c]);
                // One legend per row, on its first drawn panel: the same curves repeat along the row.
                bool legend = cols.Take(c).All(ch => Array.IndexOf(row.Channels, ch) < 0);
                panels.Add(i < 0 ? null : Panel(row, i, bins, legend));
            }
        return PanelGrid.Render(panels, cols.Count, panelWidth, panelHeight,
            title ?? "conv2 pre-norm activations of one batch: histogram (density), the norm's Gaussian components (dashed) and their sum (solid)");
    }

    private static Plot Panel(ActivationSet row, int index, int bins, bool legend)
    {
        var values = row.Values[index].Select(v => (double)v).Where(double.IsFinite).ToArray();
        var plot = new Plot();
        plot.Title($"{row.Label}: channel {row.Channels[index]}", size: 13);
        plot.XLabel("pre-norm activation", size: 12);
        plot.YLabel("density", size: 12);
        plot.Axes.Left.TickLabelStyle.FontSize = 11;
        plot.Axes.Bottom.TickLabelStyle.FontSize = 11;
        // Few ticks: a panel is narrow, and crowded labels run into each other.
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { TargetTickCount = 5 };
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { TargetTickCount = 5 };
        if (values.Length == 0) return plot;
        double mean = values.Average();
        double var = values.Select(v => (v - mean) * (v - mean)).Average();
        // The histogram range covers the bulk of the data; a few far outliers would squeeze it into one bar.
        var sorted = values.Order().ToArray();
        double lo = sorted[(int)(0.002 * (sorted.Length - 1))], hi = sorted[(int)Math.Ceiling(0.998 * (sorted.Length - 1))];
        if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
        double width = (hi - lo) / bins;
        var counts = new double[bins];
        foreach (var v in values)
        {
            int b = (int)Math.Floor((v - lo) / width);
            if (b >= 0 && b < bins) counts[b]++;
            else if (v == hi) counts[bins - 1]++;
        }
        var centres = Enumerable.Range(0, bins).Select(b => lo + (b + 0.5) * width).ToArray();
        var density = counts.Select(cnt => cnt / (values.Length * width)).ToArray();
        var bars = plot.Add.Bars(centres, density);
        foreach (var bar in bars.Bars)
        {
            bar.Size = width;
            bar.LineWidth = 0;
            bar.FillColor = Colors.Gray.WithAlpha(0.45);
        }
        bars.LegendText = "histogram";

        double top = density.Max();
        var xs = Enumerable.Range(0, 301).Select(j => lo + (hi - lo) * j / 300.0).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        var mixture = row.Mixtures[index];
        if (mixture is null)
        {
            var gauss = new ChannelMixture([1], [mean], [Math.Max(var, 1e-12)]);
            top = Math.Max(top, AddCurve(plot, xs, xs.Select(gauss.Density).ToArray(), palette.GetColor(0), dashed: true,
                "batch Gaussian"));
        }
        else
        {
            for (int k = 0; k < mixture.Components; k++)
            {
                int kk = k;
                AddCurve(plot, xs, xs.Select(x => mixture.ComponentDensity(kk, x)).ToArray(), palette.GetColor(k), dashed: true,
                    $"component {k + 1}");
            }
            // Black, not a palette colour: the sum must not look like one more component.
            top = Math.Max(top, AddCurve(plot, xs, xs.Select(mixture.Density).ToArray(), Colors.Black, dashed: false,
                "sum of components"));
        }
        if (legend)
        {
            plot.Legend.FontSize = 11;
            plot.ShowLegend(Alignment.UpperLeft);
        }
        else plot.HideLegend();
        plot.Axes.SetLimitsX(lo, hi);
        // A needle-thin component can peak far above the histogram; cap the view so the histogram stays readable.
        plot.Axes.SetLimitsY(0, Math.Min(Math.Max(top, 1e-12), 4 * Math.Max(density.Max(), 1e-12)) * 1.1);
        return plot;
    }

    private static double AddCurve(Plot plot, double[] xs, double[] ys, ScottPlot.Color color, bool dashed, string legend)
    {
        var line = plot.Add.Scatter(xs, ys);
        line.LegendText = legend;
        line.Color = color;
        line.MarkerSize = 0;
        line.LineWidth = dashed ? 1.5f : 2.2f;
        if (dashed) line.LinePattern = LinePattern.Dashed;
        return ys.Where(double.IsFinite).DefaultIfEmpty(0).Max();
    }
}
