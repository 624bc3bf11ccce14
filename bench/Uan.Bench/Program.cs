// Speed check (not a test): forward + backward wall time of BatchNorm2d against UAN Paper, UAN BatchStats and
// MixtureNorm, on the fused kernels and on the tensor-op path, as ratios to BatchNorm timed in the same process
// and interleaved with each measurement (the machine is shared, so absolute times drift).
// Usage: dotnet run -c Release --project bench/Uan.Bench [-- reps referenceReps [shape...]] with shapes as NxCxHxW.
// Other modes: profile SHAPE (best-of times: forward, backward, the kernels alone at both vector widths, each pass of
// the batch transform), series SHAPE (every call's time, to see the spread: page-fault spikes, thread wake-ups),
// soak (320 alternating BatchNorm / Paper / BatchStats calls: do they slow down over a long process?), rows, far,
// overhead SHAPE (the fixed costs around the kernels, for small inputs: layouts, conversions, thread hand-off),
// unrolled SHAPE (the generic statistics pass against a hand-unrolled K = 3 one with everything in registers),
// stress SECONDS (the ReferenceCompat tensor-op forward in a loop while another thread allocates: counts the rare
// native failures caused by TorchSharp freeing implicitly converted Scalars from its finalizer, see the README).
using System.Diagnostics;
using TorchSharp;
using Uan;
using Uan.Kernels;
using static TorchSharp.torch;

if (args.Length > 0 && args[0] == "profile")
{
    Profile(args.Length > 1 ? args[1].Split('x').Select(long.Parse).ToArray() : new long[] { 256, 128, 14, 14 });
    return;
}
if (args.Length > 0 && args[0] == "overhead")
{
    Overhead(args.Length > 1 ? args[1].Split('x').Select(long.Parse).ToArray() : new long[] { 512, 256 });
    return;
}
if (args.Length > 0 && args[0] == "unrolled")
{
    Unrolled.Run(args.Length > 1 ? args[1].Split('x').Select(long.Parse).ToArray() : new long[] { 64, 128, 32, 32 });
    return;
}
if (args.Length > 0 && args[0] == "stress")
{
    // A thread that allocates all the time makes garbage collections, and so finalizer runs, frequent.
    var stop = false;
    var noise = new Thread(() => { var keep = new List<byte[]>(); while (!stop) { keep.Add(new byte[10000]); if (keep.Count > 1000) keep.Clear(); } });
    noise.Start();
    var swx = Stopwatch.StartNew();
    int calls = 0, failures = 0;
    while (swx.Elapsed.TotalSeconds < double.Parse(args[1]))
    {
        using var sc = NewDisposeScope();
        var xx = randn(4, 3, 5, 5);
        var mu = randn(2, 3);
        var rho = randn(2, 3);
        try { UanFunctional.ReferenceCompat(xx, mu, rho, 1e-3); }
        catch (Exception e) { failures++; if (failures < 3) Console.WriteLine(e.Message.Split('\n')[0]); }
        calls++;
    }
    stop = true;
    Console.WriteLine($"{calls} calls, {failures} failures, GCs gen0 {GC.CollectionCount(0)}");
    return;
}
if (args.Length > 0 && args[0] == "rows")
{
    RowsLayout(args.Length > 1 ? int.Parse(args[1]) : 21,
        args.Length > 2 ? args.Skip(2).Select(a => a.Split('x').Select(long.Parse).ToArray()).ToArray()
            : new[] { new long[] { 512, 256 }, new long[] { 256, 64, 2, 2 } });
    return;
}
if (args.Length > 0 && args[0] == "series")
{
    Series(args.Length > 1 ? args[1].Split('x').Select(long.Parse).ToArray() : new long[] { 64, 128, 32, 32 });
    return;
}
if (args.Length > 0 && args[0] == "soak")
{
    var shape = new long[] { 64, 128, 32, 32 };
    var x = randn(shape) * 1.5 + 0.3;
    var g = randn(shape);
    using var bn = nn.BatchNorm2d(128);
    using var paper = new UnsupervisedAdaptiveNorm(128, new UanOptions { Components = 3, Mode = UanMode.Paper });
    using var stats = new UnsupervisedAdaptiveNorm(128, new UanOptions { Components = 3, Mode = UanMode.BatchStats });
    foreach (var l in new nn.Module<Tensor, Tensor>[] { bn, paper, stats }) l.train();
    for (int round = 0; round < 8; round++)
    {
        var t = new Dictionary<string, List<double>> { ["bn"] = new(), ["paper"] = new(), ["stats"] = new() };
        for (int i = 0; i < 40; i++)
        {
            t["bn"].Add(Step(bn, x, g));
            t["paper"].Add(Step(paper, x, g));
            t["stats"].Add(Step(stats, x, g));
        }
        Console.WriteLine($"round {round}: " + string.Join("  ", t.Select(kv => $"{kv.Key} {Median(kv.Value):F1}")) + $"  rss {Environment.WorkingSet / 1e6:F0} MB");
    }
    return;
}
if (args.Length > 0 && args[0] == "far")
{
    FarComponent(args.Length > 1 ? args[1].Split('x').Select(long.Parse).ToArray() : new long[] { 64, 128, 32, 32 });
    return;
}
int reps = args.Length > 0 ? int.Parse(args[0]) : 5;
int refReps = args.Length > 1 ? int.Parse(args[1]) : 1;
var shapes = args.Length > 2
    ? args.Skip(2).Select(a => a.Split('x').Select(long.Parse).ToArray()).ToArray()
    : new[] { new long[] { 64, 128, 32, 32 }, new long[] { 256, 128, 14, 14 } };
manual_seed(0);
Console.WriteLine($"threads: torch {get_num_threads()}, cores {Environment.ProcessorCount}; median of {reps} (reference {refReps})");

foreach (var shape in shapes)
{
    long c = shape[1];
    using var scope = NewDisposeScope();
    var x = randn(shape) * 1.5 + 0.3;
    var g = randn(shape);
    using var bn = nn.BatchNorm2d(c);
    var layers = MixtureLayers(c);
    foreach (var (_, l) in layers) l.train();
    bn.train();
    // First calls do data initialisation / k-means++ seeding; keep them out of the timings.
    foreach (var (_, l) in layers) Step(l, x, g);

    Console.WriteLine($"[{string.Join(",", shape)}]");
    foreach (bool fused in new[] { true, false })
    {
        using var path = UanKernels.Use(fused);
        foreach (var (name, layer) in layers)
        {
            int n = fused ? reps : refReps;
            var ratios = new List<double>();
            var bnTimes = new List<double>();
            var times = new List<double>();
            for (int i = 0; i < n; i++)
            {
                double tb = Step(bn, x, g);
                double tu = Step(layer, x, g);
                double tb2 = Step(bn, x, g);
                bnTimes.Add((tb + tb2) / 2);
                times.Add(tu);
                ratios.Add(tu / ((tb + tb2) / 2));
            }
            if (n == 0) continue;
            // Median of the paired ratios, and the ratio of the best times (the least disturbed by other load).
            Console.WriteLine($"  {(fused ? "fused" : "tensor-op"),-9} {name,-11} {Median(times),9:F1} ms   BN {Median(bnTimes),7:F1} ms   ratio {Median(ratios),6:F2}   best {times.Min(),8:F1} / {bnTimes.Min(),6:F1} = {times.Min() / bnTimes.Min(),5:F2}");
        }
    }
    foreach (var (_, l) in layers) l.Dispose();
}

static double Step(nn.Module<Tensor, Tensor> layer, Tensor x0, Tensor g)
{
    using var scope = NewDisposeScope();
    var x = x0.detach().requires_grad_(true);
    var sw = Stopwatch.StartNew();
    var y = layer.forward(x);
    y.backward(new[] { g });
    sw.Stop();
    foreach (var p in layer.parameters()) p.grad?.zero_();
    return sw.Elapsed.TotalMilliseconds;
}

static double Median(List<double> v)
{
    var s = v.OrderBy(a => a).ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
}

// Forward-only and forward+backward best-of times, and a raw Vector.Exp throughput probe.
static void Profile(long[] shape)
{
    using var scope = NewDisposeScope();
    var x = randn(shape) * 1.5 + 0.3;
    var g = randn(shape);
    using var bn = nn.BatchNorm2d(shape[1]);
    var layers = MixtureLayers(shape[1]);
    var paper = layers[0].Layer;
    foreach (var (_, l) in layers) { l.train(); Step(l, x, g); }
    double Best(Func<double> f) => Enumerable.Range(0, 15).Select(_ => f()).Min();
    double Fwd(nn.Module<Tensor, Tensor> l)
    {
        using var s = NewDisposeScope();
        using var ng = no_grad();
        var sw = Stopwatch.StartNew();
        l.forward(x);
        return sw.Elapsed.TotalMilliseconds;
    }
    Console.WriteLine($"BN fwd {Best(() => Fwd(bn)):F1}  fwd+bwd {Best(() => Step(bn, x, g)):F1}");
    foreach (var (name, l) in layers)
        Console.WriteLine($"{name} fwd {Best(() => Fwd(l)):F1}  fwd+bwd {Best(() => Step(l, x, g)):F1}");
    {
        var m = Uan.Kernels.MixtureKernel.Mixture.Paper(3, shape[1], new double[3 * shape[1]],
            Enumerable.Repeat(Math.Log(1.0 / 3), 3 * (int)shape[1]).ToArray(), Enumerable.Repeat(1.0, 3 * (int)shape[1]).ToArray(), null, null);
        var y = empty_like(x);
        var gx = empty_like(x);
        // The kernels alone at both vector widths (Vector512 is software-emulated where AVX-512 is missing).
        foreach (bool wide in new[] { false, true })
        {
            using var width = Simd.Use(wide);
            Console.Write($"{(wide ? "Vector512" : $"Vector<T> ({System.Numerics.Vector<float>.Count} floats)")}: ");
            Console.WriteLine($"kernel fwd {Best(() => { var sw = Stopwatch.StartNew(); Uan.Kernels.Fused.Forward(x, y, m, false); return sw.Elapsed.TotalMilliseconds; }):F1}" +
                $"  kernel bwd {Best(() => { var sw = Stopwatch.StartNew(); Uan.Kernels.Fused.Backward(x, g, gx, m, null, null, null, 0); return sw.Elapsed.TotalMilliseconds; }):F1}" +
                $"  copy {Best(() => { var sw = Stopwatch.StartNew(); using var c = x.clone(); return sw.Elapsed.TotalMilliseconds; }):F1}");
        }
    }
    {
        // Each pass of the batch transform (BatchStats, MN) alone, at the default width: best of 15; at K = 1, 3
        // and 5, so that the time splits into a per-element part and a per-component part.
        int c = (int)shape[1];
        foreach (int k in new[] { 1, 3, 5 })
        {
            var kc = k * c;
            var mu = Enumerable.Range(0, kc).Select(i => (i / c - (k - 1) / 2.0) * 1.0).ToArray();
            var ll = Enumerable.Repeat(Math.Log(1.0 / k), kc).ToArray();
            var vv = Enumerable.Repeat(0.8, kc).ToArray();
            var m = MixtureKernel.Mixture.WithStatistics(k, c, mu, ll, vv, mu, vv, 1e-3, null, null);
            var y = empty_like(x);
            var gx = empty_like(x);
            var zero = new double[kc];
            var os = Fused.OutputSums(x, g, m);
            var gm = new GaussianMixture(full(k, c, 1.0f / k), tensor(mu.Select(v => (float)v).ToArray()).view(k, c),
                full(k, c, 0.8f));
            double T(Action a) => Best(() => { var sw = Stopwatch.StartNew(); a(); return sw.Elapsed.TotalMilliseconds; });
            Console.WriteLine($"batch passes, K = {k}: stats {T(() => Fused.Stats(x, m)):F1}  output {T(() => Fused.Forward(x, y, m, false)):F1}" +
                $"  output sums {T(() => Fused.OutputSums(x, g, m)):F1}  backward {T(() => Fused.Backward(x, g, gx, m, zero, zero, vv, 0, os)):F1}" +
                $"  max log p {T(() => Fused.MaxLogP(x, m)):F1}" +
                $"  EM {T(() => FusedEm.Advance(x, gm)):F1}");
        }
    }
    double Bwd(nn.Module<Tensor, Tensor> l, bool leaf)
    {
        using var s = NewDisposeScope();
        var x0 = x.detach().requires_grad_(true);
        var xin = leaf ? x0 : x0 * 1;
        var y = l.forward(xin);
        var sw = Stopwatch.StartNew();
        y.backward(new[] { g });
        return sw.Elapsed.TotalMilliseconds;
    }
    double FwdGrad(nn.Module<Tensor, Tensor> l)
    {
        using var s = NewDisposeScope();
        var x0 = x.detach().requires_grad_(true);
        var sw = Stopwatch.StartNew();
        l.forward(x0);
        return sw.Elapsed.TotalMilliseconds;
    }
    Console.WriteLine($"fwd with grad: BN {Best(() => FwdGrad(bn)):F1}" +
        string.Concat(layers.Select(l => $"  {l.Name} {Best(() => FwdGrad(l.Layer)):F1}")));
    Console.WriteLine($"bwd only (leaf x): BN {Best(() => Bwd(bn, true)):F1}" +
        string.Concat(layers.Select(l => $"  {l.Name} {Best(() => Bwd(l.Layer, true)):F1}")));
    Console.WriteLine($"bwd only (x = x0*1): BN {Best(() => Bwd(bn, false)):F1}" +
        string.Concat(layers.Select(l => $"  {l.Name} {Best(() => Bwd(l.Layer, false)):F1}")));
    var data = new float[1 << 20];
    var rng = new Random(1);
    for (int i = 0; i < data.Length; i++) data[i] = (float)(-rng.NextDouble() * 10);
    double ExpProbe()
    {
        var sw = Stopwatch.StartNew();
        var acc = System.Numerics.Vector<float>.Zero;
        var span = System.Runtime.InteropServices.MemoryMarshal.Cast<float, System.Numerics.Vector<float>>(data);
        for (int r = 0; r < 6; r++)
            foreach (var v in span) acc += System.Numerics.Vector.Exp(v);
        sw.Stop();
        if (acc[0] == 12345) Console.WriteLine();
        return sw.Elapsed.TotalMilliseconds;
    }
    double t = Best(ExpProbe);
    Console.WriteLine($"Vector.Exp float: {t:F1} ms for {6 * data.Length / 1e6:F1}M exps = {t * 1e6 / (6.0 * data.Length):F2} ns/exp; Vector<float>.Count {System.Numerics.Vector<float>.Count}, accelerated {System.Numerics.Vector.IsHardwareAccelerated}");
}

// The Mixture Normalization batch transform (fwd + bwd) when every component is near the data and when one
// component is far from it in every channel (its τ underflows over the batch, which needs the log-shifted statistics
// pass), each on the fused and the tensor-op path, with BatchNorm2d for scale.
static void FarComponent(long[] shape)
{
    using var scope = NewDisposeScope();
    long c = shape[1];
    var x = randn(shape) * 1.5 + 0.3;
    var g = randn(shape);
    using var bn = nn.BatchNorm2d(c);
    bn.train();
    var logLambda = full(new long[] { 3, c }, Math.Log(1.0 / 3));
    var variance = ones(3, c);
    var near = stack(new[] { full(c, -1.0f), zeros(c), full(c, 1.0f) });
    var far = stack(new[] { full(c, -1.0f), zeros(c), full(c, 40.0f) });
    double Time(Tensor mu)
    {
        using var s = NewDisposeScope();
        var xi = x.detach().requires_grad_(true);
        var sw = Stopwatch.StartNew();
        var (y, _) = UanFunctional.MixtureBatchTransform(xi, logLambda, mu, variance, 1e-3);
        y.backward(new[] { g });
        return sw.Elapsed.TotalMilliseconds;
    }
    double Best(Func<double> f) => Enumerable.Range(0, 7).Select(_ => f()).Min();
    double tbn = Best(() => Step(bn, x, g));
    Console.WriteLine($"[{string.Join(",", shape)}] K = 3, best of 7; BatchNorm2d {tbn:F1} ms");
    foreach (bool fused in new[] { true, false })
    {
        using var path = UanKernels.Use(fused);
        double tn = Best(() => Time(near)), tf = Best(() => Time(far));
        Console.WriteLine($"  {(fused ? "fused" : "tensor-op"),-9} near {tn,8:F1} ms ({tn / tbn:F2}x BN)   one far component {tf,8:F1} ms ({tf / tbn:F2}x BN)");
    }
}

// Short spatial runs: the fused kernels on the caller's layout against the channel-rows copy ([1, C, N·S]),
// interleaved in one process, each as a ratio to BatchNorm timed next to it.
static void RowsLayout(int reps, long[][] shapes)
{
    manual_seed(0);
    Console.WriteLine($"threads: torch {get_num_threads()}; median of {reps}; fwd+bwd ms and ratio to BatchNorm");
    foreach (var shape in shapes)
    {
        long c = shape[1];
        using var scope = NewDisposeScope();
        var x = randn(shape) * 1.5 + 0.3;
        var g = randn(shape);
        using var bn = shape.Length == 2 ? (nn.Module<Tensor, Tensor>)nn.BatchNorm1d(c) : nn.BatchNorm2d(c);
        var layers = MixtureLayers(c);
        bn.train();
        foreach (var (_, l) in layers) { l.train(); Step(l, x, g); }
        Console.WriteLine($"[{string.Join(",", shape)}]");
        foreach (var (name, layer) in layers)
        {
            var t = new Dictionary<bool, List<double>> { [true] = new(), [false] = new() };
            var r = new Dictionary<bool, List<double>> { [true] = new(), [false] = new() };
            for (int i = 0; i < reps; i++)
                foreach (bool rows in new[] { i % 2 == 0, i % 2 != 0 })
                {
                    // Channel rows forced on, or off: the kernels then read the caller's layout in place (across
                    // channels for [N, C] with enough channels, else along the short runs with masked tails).
                    ChannelRows.Enabled = rows;
                    ChannelRows.Force = rows;
                    double tb = Step(bn, x, g), tu = Step(layer, x, g), tb2 = Step(bn, x, g);
                    t[rows].Add(tu);
                    r[rows].Add(tu / ((tb + tb2) / 2));
                }
            ChannelRows.Enabled = true;
            ChannelRows.Force = false;
            Console.WriteLine($"  {name,-12} caller layout {Median(t[false]),8:F2} ms ({Median(r[false]),7:F1}x)   " +
                              $"channel rows {Median(t[true]),8:F2} ms ({Median(r[true]),7:F1}x)   speed-up {Median(t[false]) / Median(t[true]):F2}");
        }
        foreach (var (_, l) in layers) l.Dispose();
    }
}

// The three layers every mode times: UAN Paper and BatchStats and MixtureNorm (2 EM iterations), K = 3.
static (string Name, nn.Module<Tensor, Tensor> Layer)[] MixtureLayers(long c) =>
[
    ("Paper", new UnsupervisedAdaptiveNorm(c, new UanOptions { Components = 3, Mode = UanMode.Paper })),
    ("BatchStats", new UnsupervisedAdaptiveNorm(c, new UanOptions { Components = 3, Mode = UanMode.BatchStats })),
    ("MixtureNorm", new MixtureNorm(c, new MixtureNormOptions { Components = 3, EmIterations = 2 })),
];

// Every call's time rather than a summary: the spread on a shared 2-core machine (page-fault spikes of tens of ms
// hit BatchNorm and UAN alike) is part of what a median hides. Forward + backward split per layer, BatchNorm timed
// around UAN Paper as `uan bench` does, the Paper backward kernel alone at both vector widths, and one EM step with
// and without the log-likelihood.
static void Series(long[] shape)
{
    using var scope = NewDisposeScope();
    long c = shape[1];
    var x = randn(shape) * 1.5 + 0.3;
    var g = randn(shape);
    using var bn = nn.BatchNorm2d(c);
    using var paper = new UnsupervisedAdaptiveNorm(c, new UanOptions { Components = 3, Mode = UanMode.Paper });
    using var stats = new UnsupervisedAdaptiveNorm(c, new UanOptions { Components = 3, Mode = UanMode.BatchStats });
    using var mn = new MixtureNorm(c, new MixtureNormOptions { Components = 3 });
    foreach (var l in new nn.Module<Tensor, Tensor>[] { bn, paper, stats, mn }) { l.train(); Step(l, x, g); }
    const int n = 12;
    string Row(Func<string> f) => string.Join(" ", Enumerable.Range(0, n).Select(_ => f()));
    double View(nn.Module<Tensor, Tensor> l, out double forward)
    {
        using var s = NewDisposeScope();
        var xi = x.detach().requires_grad_(true);
        var sw = Stopwatch.StartNew();
        var y = l.forward(xi.view(shape));
        forward = sw.Elapsed.TotalMilliseconds;
        y.backward(new[] { g });
        return sw.Elapsed.TotalMilliseconds - forward;
    }
    Console.WriteLine($"[{string.Join(",", shape)}], ms per call, {n} calls each");
    Console.WriteLine("BN / Paper / BN (fwd+bwd): " + Row(() =>
    {
        double b1 = View(bn, out var f1) + f1, t = View(paper, out var ft) + ft, b2 = View(bn, out var f2) + f2;
        return $"{b1:F0}/{t:F0}/{b2:F0}";
    }));
    foreach (var (name, l) in new (string, nn.Module<Tensor, Tensor>)[] { ("BatchNorm", bn), ("UAN Paper", paper), ("UAN BatchStats", stats), ("MixtureNorm", mn) })
        Console.WriteLine($"{name} fwd+bwd: " + Row(() => { double b = View(l, out var f); return $"{f:F0}+{b:F0}"; }));
    var m = MixtureKernel.Mixture.Paper(3, c, new double[3 * c], Enumerable.Repeat(Math.Log(1.0 / 3), 3 * (int)c).ToArray(),
        Enumerable.Repeat(1.0, 3 * (int)c).ToArray(), null, null);
    var gx = empty_like(x);
    foreach (bool wide in new[] { false, true })
    {
        using var width = Simd.Use(wide);
        Console.WriteLine($"Paper backward kernel, {(wide ? "Vector512" : "Vector<T>")}: " + Row(() =>
        {
            var sw = Stopwatch.StartNew();
            Fused.Backward(x, g, gx, m, null, null, null, 0);
            return sw.Elapsed.TotalMilliseconds.ToString("F0");
        }));
    }
    var start = new GaussianMixture(full(3, c, 1.0 / 3), stack(new[] { full(c, -1.0f), zeros(c), full(c, 1.0f) }), ones(3, c));
    Console.WriteLine("EM step with / without the log-likelihood: " + Row(() =>
    {
        var sw = Stopwatch.StartNew();
        using var s = NewDisposeScope();
        FusedEm.Step(x, start);
        double t1 = sw.Elapsed.TotalMilliseconds;
        FusedEm.Advance(x, start);
        return $"{t1:F0}/{sw.Elapsed.TotalMilliseconds - t1:F0}";
    }));
}

// Where a small input's time goes: the fixed costs around the kernels (best of 200 calls, microseconds).
static void Overhead(long[] shape)
{
    using var scope = NewDisposeScope();
    var x = randn(shape);
    long c = shape[1];
    using var paper = new UnsupervisedAdaptiveNorm(c, new UanOptions { Components = 3, Mode = UanMode.Paper });
    paper.train();
    double Us(Action a)
    {
        double best = double.MaxValue;
        for (int i = 0; i < 200; i++)
        {
            using var s = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            a();
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds * 1000);
        }
        return best;
    }
    var mu = randn(3, c);
    var xg = x.detach().requires_grad_(true);
    Console.WriteLine($"Paper forward (grad) {Us(() => paper.forward(xg)):F0} us; no grad {Us(() => { using var ng = no_grad(); paper.forward(x); }):F0} us");
    Console.WriteLine($"ChannelRows.To {Us(() => ChannelRows.To(x)):F0} us; Values(mu) {Us(() => KernelMath.Values(mu)):F0} us; empty_like {Us(() => empty_like(x)):F0} us");
    var xr = ChannelRows.To(x);
    var ll = full(3, c, Math.Log(1.0 / 3));
    var vv = ones(3, c);
    var w = ones(c);
    var bb = zeros(c);
    var mm = MixtureKernel.Mixture.Paper(3, c, KernelMath.Values(mu)!, KernelMath.Values(ll)!, KernelMath.Values(vv)!, null, null);
    var yr = empty_like(xr);
    Console.WriteLine($"Fused.Paper on rows {Us(() => Fused.Paper(xr, mu, ll, vv, w, bb, false)):F0} us; kernel alone {Us(() => Fused.Forward(xr, yr, mm, false)):F0} us; rows -> x {Us(() => ChannelRows.From(xr, x.shape)):F0} us");
    var gg = randn(shape);
    Console.WriteLine($"Paper fwd+bwd {Us(() => Step(paper, x, gg) ):F0} us; backward of a transpose-copy {Us(() => { var x0 = x.detach().requires_grad_(true); var t = ChannelRows.To(x0); var sw = Stopwatch.StartNew(); t.backward(new[] { ChannelRows.To(gg) }); }):F0} us");
    foreach (var (name, l) in MixtureLayers(c))
    {
        l.train();
        Console.WriteLine($"{name} fwd+bwd {Us(() => Step(l, x, gg)):F0} us, with channel rows {Us(() => { ChannelRows.Force = true; Step(l, x, gg); ChannelRows.Force = false; }):F0} us");
    }
    {
        // The batch transform's forward with grad, against its two kernel passes alone.
        var lv = full(3, c, Math.Log(1.0 / 3));
        var mv = tensor(Enumerable.Range(0, 3 * (int)c).Select(i => (float)(i / c - 1)).ToArray()).view(3, c);
        var vv2 = full(3, c, 0.8f);
        var probe = new MixtureKernel.Mixture(3, c, KernelMath.Values(mv)!, KernelMath.Values(lv)!, KernelMath.Values(vv2)!, KernelMath.Values(mv)!, new double[3 * c], null, null);
        var yy = empty_like(x);
        var xq = x.detach().requires_grad_(true);
        Console.WriteLine($"batch transform fwd (grad) {Us(() => UanFunctional.MixtureBatchTransform(xq, lv, mv, vv2, 1e-3)):F0} us; stats pass {Us(() => Fused.Stats(x, probe)):F0} us; output pass {Us(() => Fused.Forward(x, yy, probe, false)):F0} us");
    }
    Console.WriteLine($"Parallel.For(256, empty) {Us(() => Parallel.For(0, 256, _ => { })):F0} us; softplus [3,C] {Us(() => nn.functional.softplus(mu)):F0} us; mu * 1 {Us(() => { var t = mu * 1; }):F0} us");
}
