using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using TorchSharp;
using Uan.Kernels;
using Uan.Lab.Models;
using static TorchSharp.torch;

namespace Uan.Benchmarks;

/// <summary>In-process, few iterations, one call per iteration (each call is milliseconds to seconds long).</summary>
public sealed class ShortInProcess : ManualConfig
{
    public ShortInProcess()
    {
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
            .WithWarmupCount(3).WithIterationCount(15).WithInvocationCount(1).WithUnrollFactor(1));
        AddDiagnoser(MemoryDiagnoser.Default);
        WithOptions(ConfigOptions.DisableOptimizationsValidator);
    }
}

/// <summary>Shared set-up: a random input and upstream gradient of the shape, and the layers.</summary>
public abstract class NormBench
{
    /// <summary>Input shape, NxCxHxW or NxC.</summary>
    [Params("64x128x32x32", "256x64x16x16", "512x256")]
    public string Shape { get; set; } = "64x128x32x32";

    /// <summary>Mixture components of UAN and MN.</summary>
    [Params(1, 3, 5)]
    public int K { get; set; } = 3;

    protected Tensor X = null!;
    protected Tensor G = null!;
    readonly Dictionary<string, nn.Module<Tensor, Tensor>> _layers = new();

    [GlobalSetup]
    public void Setup()
    {
        var shape = Shape.Split('x').Select(long.Parse).ToArray();
        var generator = new Generator(20241);
        X = randn(shape, generator: generator) * 1.5 + 0.3;
        G = randn(shape, generator: generator);
        int spatial = shape.Length - 2;
        long c = shape[1];
        var specs = new Dictionary<string, string>
        {
            ["bn"] = "bn", ["gn"] = shape[1] % 32 == 0 ? "gn:groups=32" : "gn:groups=1", ["ln"] = "ln",
            ["mn"] = $"mn:k={K}", ["paper"] = $"uan:k={K}", ["batchstats"] = $"uan:k={K},mode=batchstats",
        };
        foreach (var (name, spec) in specs)
        {
            var layer = Norms.Create(spec, c, spatial);
            layer.train();
            _layers[name] = layer;
            // First calls fit (MN) or seed; keep them out of the measurement.
            using (UanKernels.Use(true)) Run(name, true, true);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var l in _layers.Values) l.Dispose();
        X.Dispose();
        G.Dispose();
    }

    protected void Run(string name, bool backward, bool fused)
    {
        using var path = UanKernels.Use(fused);
        using var scope = NewDisposeScope();
        var layer = _layers[name];
        if (!backward)
        {
            using var ng = no_grad();
            layer.call(X);
            return;
        }
        // A view of the leaf, as a layer inside a network sees the previous layer's output: with the leaf itself,
        // autograd clones the gradient a custom C# node returns (its managed handle still holds a reference).
        var x = X.detach().requires_grad_(true);
        layer.call(x.view(X.shape)).backward(new[] { G });
        foreach (var p in layer.parameters()) p.grad?.zero_();
    }
}

/// <summary>Forward + backward of each norm, fused kernels, against BatchNorm2d.</summary>
[Config(typeof(ShortInProcess))]
public class NormForwardBackward : NormBench
{
    [Benchmark(Baseline = true)] public void BatchNorm() => Run("bn", true, true);
    [Benchmark] public void GroupNorm() => Run("gn", true, true);
    [Benchmark] public void LayerNorm() => Run("ln", true, true);
    [Benchmark] public void MixtureNorm() => Run("mn", true, true);
    [Benchmark] public void UanPaper() => Run("paper", true, true);
    [Benchmark] public void UanBatchStats() => Run("batchstats", true, true);
}

/// <summary>Forward only (no_grad) of each norm, fused kernels, against BatchNorm2d.</summary>
[Config(typeof(ShortInProcess))]
public class NormForward : NormBench
{
    [Benchmark(Baseline = true)] public void BatchNorm() => Run("bn", false, true);
    [Benchmark] public void GroupNorm() => Run("gn", false, true);
    [Benchmark] public void LayerNorm() => Run("ln", false, true);
    [Benchmark] public void MixtureNorm() => Run("mn", false, true);
    [Benchmark] public void UanPaper() => Run("paper", false, true);
    [Benchmark] public void UanBatchStats() => Run("batchstats", false, true);
}

/// <summary>Fewer iterations, for the tensor-op path (seconds per call).</summary>
public sealed class ReferenceInProcess : ManualConfig
{
    public ReferenceInProcess()
    {
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
            .WithWarmupCount(1).WithIterationCount(3).WithInvocationCount(1).WithUnrollFactor(1));
        AddDiagnoser(MemoryDiagnoser.Default);
        WithOptions(ConfigOptions.DisableOptimizationsValidator);
    }
}

/// <summary>
/// Forward + backward on the tensor-op (reference) path, against BatchNorm2d. Slow: a call takes seconds at the
/// largest shape, so run it filtered (for example --filter '*NormReferencePath*' --anyCategories … or pick K with
/// BenchmarkDotNet's parameter filters).
/// </summary>
[Config(typeof(ReferenceInProcess))]
public class NormReferencePath : NormBench
{
    [Benchmark(Baseline = true)] public void BatchNorm() => Run("bn", true, false);
    [Benchmark] public void MixtureNorm() => Run("mn", true, false);
    [Benchmark] public void UanPaper() => Run("paper", true, false);
    [Benchmark] public void UanBatchStats() => Run("batchstats", true, false);
}

/// <summary>One AdamW training step of the shallow CNN (batch 64, 28×28) with each norm at conv2, against BN there.</summary>
[Config(typeof(ShortInProcess))]
public class ShallowCnnStep
{
    Tensor _x = null!, _y = null!;
    readonly Dictionary<string, (ShallowCnn Model, optim.Optimizer Optimizer)> _models = new();

    [GlobalSetup]
    public void Setup()
    {
        var generator = new Generator(7);
        _x = randn(new long[] { 64, 1, 28, 28 }, generator: generator);
        _y = randint(0, 10, new long[] { 64 }, generator: generator);
        foreach (var norm in new[] { "bn:eps=1e-3,momentum=0.1", "uan:k=3", "uan:k=3,mode=batchstats", "mn:k=3" })
        {
            var model = new ShallowCnn(1, 10, 28, norm);
            model.train();
            _models[norm] = (model, optim.AdamW(model.parameters(), lr: 1e-3));
            Step(norm);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var (m, o) in _models.Values) { o.Dispose(); m.Dispose(); }
    }

    void Step(string norm)
    {
        using var scope = NewDisposeScope();
        var (model, optimizer) = _models[norm];
        optimizer.zero_grad();
        nn.functional.cross_entropy(model.call(_x), _y).backward();
        optimizer.step();
    }

    [Benchmark(Baseline = true)] public void BatchNorm() => Step("bn:eps=1e-3,momentum=0.1");
    [Benchmark] public void UanPaper() => Step("uan:k=3");
    [Benchmark] public void UanBatchStats() => Step("uan:k=3,mode=batchstats");
    [Benchmark] public void MixtureNorm() => Step("mn:k=3");
}

/// <summary>
/// Forward + backward of the fused UAN and MixtureNorm at each vector width the kernels run at: Vector&lt;T&gt;
/// (256-bit on x64 unless the process sets DOTNET_MaxVectorTBitWidth) and Vector512 (the default where AVX-512 is
/// accelerated), at [64, 128, 32, 32] with K = 3, against BatchNorm2d.
/// </summary>
[Config(typeof(ShortInProcess))]
public class VectorWidth
{
    /// <summary>True: Vector512; false: Vector&lt;T&gt;.</summary>
    [Params(false, true)]
    public bool Wide { get; set; }

    Tensor _x = null!, _g = null!;
    readonly Dictionary<string, nn.Module<Tensor, Tensor>> _layers = new();

    [GlobalSetup]
    public void Setup()
    {
        var generator = new Generator(20241);
        _x = randn(new long[] { 64, 128, 32, 32 }, generator: generator) * 1.5 + 0.3;
        _g = randn(new long[] { 64, 128, 32, 32 }, generator: generator);
        foreach (var spec in new[] { "bn", "uan:k=3", "uan:k=3,mode=batchstats", "mn:k=3" })
        {
            var layer = Norms.Create(spec, 128, 2);
            layer.train();
            _layers[spec] = layer;
            Run(spec);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var l in _layers.Values) l.Dispose();
        _x.Dispose();
        _g.Dispose();
    }

    void Run(string spec)
    {
        using var width = Simd.Use(Wide);
        using var scope = NewDisposeScope();
        var x = _x.detach().requires_grad_(true);
        var layer = _layers[spec];
        layer.call(x.view(_x.shape)).backward(new[] { _g });
        foreach (var p in layer.parameters()) p.grad?.zero_();
    }

    [Benchmark(Baseline = true)] public void BatchNorm() => Run("bn");
    [Benchmark] public void UanPaper() => Run("uan:k=3");
    [Benchmark] public void UanBatchStats() => Run("uan:k=3,mode=batchstats");
    [Benchmark] public void MixtureNorm() => Run("mn:k=3");
}
