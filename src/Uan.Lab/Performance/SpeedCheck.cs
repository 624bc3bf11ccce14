using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;
using Uan.Kernels;
using Uan.Lab.Models;
using static TorchSharp.torch;

namespace Uan.Lab.Performance;

/// <summary>One layer to time: a display name, a norm spec for <see cref="Norms.Create(string, long, int)"/>, and
/// whether the fused CPU kernels are on while it runs.</summary>
public sealed record SpeedCase(string Name, string Spec, bool Fused);

/// <summary>
/// One measured row: median wall time of the case and of BatchNorm timed around it (ms), the median of the paired
/// ratios, the ratio of the two best times (the calls least disturbed by page faults and other load), and (when
/// measured) the memory the autograd graph keeps after the forward, beyond the input and output, in bytes and in
/// units of the input's size.
/// </summary>
public sealed record SpeedRow(string Shape, string Name, bool Fused, bool Backward, double Milliseconds,
    double BatchNormMilliseconds, double Ratio, double BestRatio, long? KeptBytes, double? KeptInputs);

/// <summary>
/// One training step of a model with a given norm against the same step with BatchNorm: the median times (ms) and the
/// median of the paired ratios (each step over the mean of the BatchNorm steps timed around it).
/// </summary>
public sealed record StepRow(string Model, string Norm, double Milliseconds, double BatchNormMilliseconds, double Ratio);

/// <summary>
/// Quick speed check for users (the BenchmarkDotNet suite under bench/ is the thorough one): forward or
/// forward + backward wall time of each norm as a ratio to TorchSharp's BatchNorm2d timed just before and after it
/// (so the ratio survives a machine whose load drifts), median over repeats after warm-up; and the graph memory a
/// forward keeps for backward, from the process's resident set with large allocations forced to mmap.
/// </summary>
public static class SpeedCheck
{
    /// <summary>
    /// The cases the README's table shows for <paramref name="channels"/> channels: GroupNorm (32 groups, or the most
    /// that divide C), LayerNorm, and UAN / MN at K = <paramref name="k"/> on both paths.
    /// </summary>
    public static IReadOnlyList<SpeedCase> DefaultCases(long channels, int k = 3) =>
    [
        new($"GroupNorm({Groups(channels)})", $"gn:groups={Groups(channels)}", true),
        new("LayerNorm", "ln", true),
        new($"UAN Paper K={k}", $"uan:k={k}", true),
        new($"UAN BatchStats K={k}", $"uan:k={k},mode=batchstats", true),
        new($"MixtureNorm K={k}", $"mn:k={k}", true),
        new($"UAN Paper K={k}", $"uan:k={k}", false),
        new($"UAN BatchStats K={k}", $"uan:k={k},mode=batchstats", false),
        new($"MixtureNorm K={k}", $"mn:k={k}", false),
    ];

    static long Groups(long channels) => new long[] { 32, 16, 8, 4, 2, 1 }.First(g => channels % g == 0);

    /// <summary>Parses "64x128x32x32" (or "512x256") into a shape; throws naming the problem.</summary>
    public static long[] ParseShape(string text)
    {
        var parts = text.Split('x', StringSplitOptions.TrimEntries);
        if (parts.Length < 2 || parts.Length > 5 || parts.Any(p => !long.TryParse(p, out var v) || v < 1))
            throw new ArgumentException($"Shape '{text}': expected 2 to 5 positive sizes joined by 'x', such as 64x128x32x32 or 512x256.");
        return parts.Select(long.Parse).ToArray();
    }

    /// <summary>
    /// Times every case on a random input of <paramref name="shape"/> ([N, C, ...]). <paramref name="repeats"/>
    /// measured runs after <paramref name="warmup"/> (the first forward of MN and data-initialised UAN also fits or
    /// seeds, so it is never timed); the tensor-op path, tens of times slower, gets <paramref name="referenceRepeats"/>.
    /// </summary>
    /// <remarks>
    /// By default each layer gets a view of a leaf tensor, as a layer inside a network gets the output of the layer
    /// before it. With <paramref name="leafInput"/> it gets the leaf itself; then autograd clones the input gradient a
    /// custom (C#) autograd node returns, because TorchSharp's managed handle still references it, so the fused
    /// kernels pay one extra input-sized allocation and copy that native BatchNorm does not (and that no layer inside
    /// a network pays).
    /// </remarks>
    public static List<SpeedRow> MeasureNorms(long[] shape, IEnumerable<SpeedCase> cases, bool backward = true,
        int repeats = 5, int referenceRepeats = 1, int warmup = 1, bool memory = true,
        IProgress<string>? progress = null, bool leafInput = false)
    {
        if (shape.Length < 2) throw new ArgumentException("Shape needs at least [N, C].", nameof(shape));
        if (repeats < 1 || referenceRepeats < 0 || warmup < 0)
            throw new ArgumentException("repeats ≥ 1, referenceRepeats ≥ 0 and warmup ≥ 0 are required.");
        int spatial = shape.Length - 2;
        long c = shape[1];
        string shapeText = string.Join("x", shape);
        var rows = new List<SpeedRow>();
        using var scope = NewDisposeScope();
        var generator = new Generator(20241);
        var x = randn(shape, generator: generator) * 1.5 + 0.3;
        var g = randn(shape, generator: generator);
        using var bn = Norms.Create("bn", c, spatial);
        bn.train();
        for (int i = 0; i < warmup + 1; i++) Time(bn, x, g, backward, leafInput);
        long? bnKept = memory ? KeptBytes(bn, x, true) : null;
        rows.Add(new SpeedRow(shapeText, "BatchNorm", true, backward, Median(Enumerable.Range(0, repeats).Select(_ => Time(bn, x, g, backward, leafInput))),
            double.NaN, 1, 1, bnKept, bnKept / (double)Bytes(x)));
        rows[0] = rows[0] with { BatchNormMilliseconds = rows[0].Milliseconds };
        var allBn = new List<double>();
        foreach (var sc in cases)
        {
            progress?.Report($"{shapeText}: {sc.Name} ({SpeedTable.PathOf(sc.Name, sc.Fused)})");
            int n = sc.Fused ? repeats : referenceRepeats;
            if (n == 0) continue;
            using var path = UanKernels.Use(sc.Fused);
            using var layer = Norms.Create(sc.Spec, c, spatial);
            layer.train();
            for (int i = 0; i < warmup; i++) Time(layer, x, g, backward, leafInput);
            var times = new List<double>();
            var bnTimes = new List<double>();
            var ratios = new List<double>();
            var bnSingles = new List<double>();
            for (int i = 0; i < n; i++)
            {
                double b1 = Time(bn, x, g, backward, leafInput), t = Time(layer, x, g, backward, leafInput), b2 = Time(bn, x, g, backward, leafInput);
                bnSingles.Add(b1);
                bnSingles.Add(b2);
                times.Add(t);
                bnTimes.Add((b1 + b2) / 2);
                ratios.Add(t / ((b1 + b2) / 2));
            }
            long? kept = memory ? KeptBytes(layer, x, true) : null;
            rows.Add(new SpeedRow(shapeText, sc.Name, sc.Fused, backward, Median(times), Median(bnTimes), Median(ratios),
                times.Min() / bnSingles.Min(), kept, kept / (double)Bytes(x)));
            allBn.AddRange(bnTimes);
        }
        // BatchNorm's own row: the median of the before-and-after means timed around every other layer. Its own first
        // calls alone grow the heap (page faults) and would overstate it several times.
        if (allBn.Count > 0)
        {
            double bnAll = Median(allBn);
            rows[0] = rows[0] with { Milliseconds = bnAll, BatchNormMilliseconds = bnAll };
        }
        return rows;
    }

    /// <summary>
    /// Adds the memory kept for backward to rows measured with <c>memory: false</c>. Call it after every timing:
    /// the measurement fixes glibc's mmap threshold for the rest of the process, which makes each new large tensor
    /// cost page faults and would slow the timings of small shapes.
    /// </summary>
    public static List<SpeedRow> AddMemory(IReadOnlyList<SpeedRow> rows, IEnumerable<SpeedCase> cases)
    {
        var result = new List<SpeedRow>();
        var caseList = cases.ToList();
        foreach (var group in rows.GroupBy(r => r.Shape))
        {
            var shape = ParseShape(group.Key);
            using var scope = NewDisposeScope();
            var x = randn(shape, generator: new Generator(20241)) * 1.5 + 0.3;
            long inputBytes = Bytes(x);
            foreach (var row in group)
            {
                string spec = row.Name == "BatchNorm" ? "bn"
                    : caseList.First(c => c.Name == row.Name && c.Fused == row.Fused).Spec;
                using var path = UanKernels.Use(row.Fused);
                using var layer = Norms.Create(spec, shape[1], shape.Length - 2);
                layer.train();
                long? kept = KeptBytes(layer, x, true);
                result.Add(row with { KeptBytes = kept, KeptInputs = kept / (double)inputBytes });
            }
        }
        return result;
    }

    /// <summary>
    /// One training step (forward, cross-entropy, backward, AdamW step) of the shallow CNN with each norm at conv2
    /// against the same step with BatchNorm there, on random [batch, 1, size, size] images; median of paired ratios.
    /// </summary>
    public static List<StepRow> MeasureShallowCnnStep(IEnumerable<string> norms, int batch = 64, int size = 28,
        int repeats = 7, int warmup = 2, IProgress<string>? progress = null)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        var x = randn(new long[] { batch, 1, size, size }, generator: generator);
        var y = randint(0, 10, new long[] { batch }, generator: generator);
        var bn = Step.For(new ShallowCnn(1, 10, size, "bn:eps=1e-3,momentum=0.1"));
        for (int i = 0; i < warmup; i++) bn.Run(x, y);
        var rows = new List<StepRow>();
        foreach (var norm in norms)
        {
            progress?.Report($"shallow CNN step: {norm}");
            var step = Step.For(new ShallowCnn(1, 10, size, norm));
            for (int i = 0; i < warmup; i++) step.Run(x, y);
            var times = new List<double>();
            var bnTimes = new List<double>();
            var ratios = new List<double>();
            for (int i = 0; i < repeats; i++)
            {
                double b1 = bn.Run(x, y), t = step.Run(x, y), b2 = bn.Run(x, y);
                times.Add(t);
                bnTimes.Add((b1 + b2) / 2);
                ratios.Add(t / ((b1 + b2) / 2));
            }
            step.Dispose();
            rows.Add(new StepRow($"shallow-cnn {batch}x1x{size}x{size}", norm, Median(times), Median(bnTimes), Median(ratios)));
        }
        bn.Dispose();
        return rows;
    }

    sealed class Step(ShallowCnn model, optim.Optimizer optimizer) : IDisposable
    {
        public static Step For(ShallowCnn model)
        {
            model.train();
            return new Step(model, optim.AdamW(model.parameters(), lr: 1e-3));
        }

        public double Run(Tensor x, Tensor y)
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(x), y);
            loss.backward();
            optimizer.step();
            return sw.Elapsed.TotalMilliseconds;
        }

        public void Dispose()
        {
            optimizer.Dispose();
            model.Dispose();
        }
    }

    static double Time(nn.Module<Tensor, Tensor> layer, Tensor x0, Tensor g, bool backward, bool leafInput)
    {
        using var scope = NewDisposeScope();
        if (!backward)
        {
            using var ng = no_grad();
            var sw0 = Stopwatch.StartNew();
            layer.call(x0);
            return sw0.Elapsed.TotalMilliseconds;
        }
        var x = x0.detach().requires_grad_(true);
        var sw = Stopwatch.StartNew();
        var y = layer.call(leafInput ? x : x.view(x0.shape));
        y.backward(new[] { g });
        sw.Stop();
        foreach (var p in layer.parameters()) p.grad?.zero_();
        return sw.Elapsed.TotalMilliseconds;
    }

    static long Bytes(Tensor t) => t.NumberOfElements * t.ElementSize;

    /// <summary>
    /// Resident memory held after a forward with autograd, beyond the output: what the graph keeps for backward
    /// (saved tensors and intermediates). Null when the resident set cannot be read (not Linux).
    /// </summary>
    static long? KeptBytes(nn.Module<Tensor, Tensor> layer, Tensor x0, bool train)
    {
        if (!ForceMmap()) return null;
        using var scope = NewDisposeScope();
        var x = x0.detach().requires_grad_(true);
        // Once to settle lazily allocated state (running buffers, parameter gradients), then measured.
        layer.call(x).backward(new[] { ones_like(x0) });
        GC.Collect();
        long before = Resident();
        var y = layer.call(x);
        long after = Resident();
        long kept = after - before - Bytes(y);
        y.Dispose();
        return Math.Max(kept, 0);
    }

    static bool? _mmap;

    /// <summary>
    /// glibc serves large allocations from the heap once its dynamic mmap threshold has risen, and then freed memory
    /// stays resident and is reused unseen; a fixed threshold keeps every large tensor in its own mapping, so the
    /// resident set tracks live tensors.
    /// </summary>
    static bool ForceMmap()
    {
        if (_mmap is bool done) return done;
        bool ok = false;
        if (OperatingSystem.IsLinux() && File.Exists("/proc/self/statm"))
        {
            try
            {
                const int M_MMAP_THRESHOLD = -3;
                ok = mallopt(M_MMAP_THRESHOLD, 64 * 1024) == 1;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                ok = false;
            }
        }
        _mmap = ok;
        return ok;
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    static extern int mallopt(int param, int value);

    static long Resident()
    {
        var fields = File.ReadAllText("/proc/self/statm").Split(' ');
        return long.Parse(fields[1]) * Environment.SystemPageSize;
    }

    static double Median(IEnumerable<double> values)
    {
        var s = values.OrderBy(v => v).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
