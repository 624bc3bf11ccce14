using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Adaptation;

/// <summary>
/// The official AdaMatch's class distributions over time (google-research/adamatch, domain_adaptation/adamatch.py
/// lines 49–50): the source one is an exponential moving average, <c>objax.nn.ExponentialMovingAverage((nclass,),
/// init_value=1/nclass)</c> with objax's default momentum 0.999 (objax/nn/layers.py, <c>avg += (avg − x)·(momentum −
/// 1)</c>, i.e. avg ← m·avg + (1 − m)·x); the target one is the plain mean of the last 128 batches,
/// <c>objax.nn.MovingAverage((nclass,), buffer_size=128, init_value=1/nclass)</c> (a buffer of 128 rows that starts
/// filled with 1/C; each call drops the oldest row, appends the new one and returns the mean of all 128). Both are
/// updated before they are used (adamatch.py lines 79–80). The state is saved with the checkpoint.
/// </summary>
public sealed class ClassDistributionTracker : IDisposable
{
    /// <summary>Momentum of the source EMA (objax.nn.ExponentialMovingAverage's default).</summary>
    public const double SourceMomentum = 0.999;
    /// <summary>Batches in the target window (adamatch.py line 50, buffer_size=128).</summary>
    public const int TargetWindow = 128;

    private Tensor _source;
    private Tensor _window;

    /// <summary>Both averages start at 1/<paramref name="classes"/> per class.</summary>
    public ClassDistributionTracker(int classes, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes), classes, "must be ≥ 1");
        Classes = classes;
        _source = full([classes], 1.0 / classes, dtype, device).DetachFromDisposeScope();
        _window = full([TargetWindow, classes], 1.0 / classes, dtype, device).DetachFromDisposeScope();
    }

    /// <summary>Classes C.</summary>
    public int Classes { get; }

    /// <summary>The source EMA, [C] (a copy).</summary>
    public Tensor SourceAverage => _source.clone();

    /// <summary>The mean of the target window, [C].</summary>
    public Tensor TargetAverage => _window.mean(dimensions: [0]);

    /// <summary>
    /// Adds one batch's mean class distributions ([C] each) and returns the averages after the update (new tensors in
    /// the caller's scope): source ← m·source + (1 − m)·<paramref name="sourceBatchMean"/>; the target window drops its
    /// oldest row and appends <paramref name="targetBatchMean"/>.
    /// </summary>
    public (Tensor Source, Tensor Target) Update(Tensor sourceBatchMean, Tensor targetBatchMean)
    {
        if (!sourceBatchMean.shape.SequenceEqual(new long[] { Classes }) || !targetBatchMean.shape.SequenceEqual(new long[] { Classes }))
            throw new ArgumentException($"ClassDistributionTracker: batch means must be [{Classes}].");
        using (no_grad())
        {
            _source.mul_(SourceMomentum).add_(sourceBatchMean.detach().to(_source.dtype), 1 - SourceMomentum);
            using var scope = NewDisposeScope();
            var shifted = cat([_window.narrow(0, 1, TargetWindow - 1), targetBatchMean.detach().to(_window.dtype).unsqueeze(0)], 0);
            _window.copy_(shifted);
        }
        return (SourceAverage, TargetAverage);
    }

    /// <summary>Writes both averages.</summary>
    public void Save(BinaryWriter writer)
    {
        _source.Save(writer);
        _window.Save(writer);
    }

    /// <summary>Reads what <see cref="Save"/> wrote.</summary>
    public void Load(BinaryReader reader)
    {
        _source.Load(reader);
        _window.Load(reader);
    }

    /// <summary>Releases the tensors.</summary>
    public void Dispose()
    {
        _source.Dispose();
        _window.Dispose();
    }
}

/// <summary>
/// An exponential moving average of a model's weights, evaluated in its place (google-research/adamatch,
/// domain_adaptation/adamatch.py line 41: <c>objax.optimizer.ExponentialMovingAverageModule(self.model,
/// momentum=0.999)</c>, updated after every optimiser step, line 110, and used by the evaluation, lines 56–58).
/// objax's update is m ← m + (1 − momentum)·(v − m) from m = 0 (objax/optimizer/ema.py lines 40, 46); with its
/// <c>debias</c> option the value used is m / (1 − (1 − 10⁻⁶)·momentumⁿ) after n updates (lines 51–54). The official
/// run leaves debias off, which after its 131,072 steps (8 Mi images of 64) makes no difference; at the few thousand
/// steps of a CPU run the zero start would still weigh 1 − 0.999ⁿ (0.63 at n = 1,000), so this class applies objax's
/// debias (see docs/experiments.md). Averaged: every parameter and the running statistics (buffers named
/// running_mean, running_var), as objax averages all model variables; other buffers (counters, the initialised
/// flag, a fixed input standardisation) are used as they are in the live model.
/// </summary>
public sealed class WeightEma : IDisposable
{
    /// <summary>objax's eps of the debias (objax/optimizer/ema.py line 16).</summary>
    public const double DebiasEpsilon = 1e-6;

    private readonly (string Name, Tensor Live, Tensor Average)[] _entries;

    /// <summary>Starts the average at zero for every averaged tensor of <paramref name="model"/>.</summary>
    public WeightEma(nn.Module model, double momentum = 0.999)
    {
        if (!(momentum >= 0 && momentum < 1)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "must lie in [0, 1)");
        Momentum = momentum;
        var list = new List<(string, Tensor, Tensor)>();
        foreach (var (name, p) in model.named_parameters())
            list.Add((name, p, zeros_like(p).requires_grad_(false).DetachFromDisposeScope()));
        foreach (var (name, b) in model.named_buffers())
            if (IsAveragedBuffer(name, b))
                list.Add((name, b, zeros_like(b).DetachFromDisposeScope()));
        _entries = list.ToArray();
    }

    /// <summary>The momentum (0.999).</summary>
    public double Momentum { get; }

    /// <summary>Updates done so far (objax's <c>step</c>).</summary>
    public long Updates { get; private set; }

    /// <summary>Names of the averaged tensors, parameters first.</summary>
    public IEnumerable<string> Names => _entries.Select(e => e.Name);

    /// <summary>True for a buffer the average covers: a floating-point running_mean or running_var.</summary>
    public static bool IsAveragedBuffer(string name, Tensor buffer) =>
        buffer.is_floating_point() && (name.EndsWith("running_mean", StringComparison.Ordinal) || name.EndsWith("running_var", StringComparison.Ordinal));

    /// <summary>m ← m + (1 − momentum)·(v − m) for every averaged tensor.</summary>
    public void Update()
    {
        using var noGrad = no_grad();
        foreach (var (_, live, average) in _entries)
            average.add_(live.detach() - average, 1 - Momentum);
        Updates++;
    }

    /// <summary>The debiased average of <paramref name="name"/> (a new tensor): m / (1 − (1 − 10⁻⁶)·momentumⁿ).</summary>
    public Tensor Value(string name)
    {
        var e = _entries.First(x => x.Name == name);
        return e.Average * DebiasFactor();
    }

    double DebiasFactor() => Updates == 0 ? 1 : 1 / (1 - (1 - DebiasEpsilon) * Math.Pow(Momentum, Updates));

    /// <summary>
    /// Puts the debiased averages into the live model until the returned scope is disposed, which puts the live
    /// values back (objax's <c>replace_vars</c>). Before the first update the live values are kept.
    /// </summary>
    public IDisposable Swap()
    {
        if (Updates == 0) return new Restore([]);
        using var noGrad = no_grad();
        double factor = DebiasFactor();
        var saved = new List<(Tensor, Tensor)>();
        foreach (var (_, live, average) in _entries)
        {
            saved.Add((live, live.detach().clone().DetachFromDisposeScope()));
            live.detach().copy_(average * factor);
        }
        return new Restore(saved);
    }

    /// <summary>Writes the update count and the averages.</summary>
    public void Save(BinaryWriter writer)
    {
        writer.Write(Updates);
        foreach (var e in _entries) e.Average.Save(writer);
    }

    /// <summary>Reads what <see cref="Save"/> wrote.</summary>
    public void Load(BinaryReader reader)
    {
        Updates = reader.ReadInt64();
        foreach (var e in _entries) e.Average.Load(reader);
    }

    /// <summary>Releases the averages.</summary>
    public void Dispose()
    {
        foreach (var e in _entries) e.Average.Dispose();
    }

    private sealed class Restore(List<(Tensor Live, Tensor Saved)> saved) : IDisposable
    {
        public void Dispose()
        {
            using var noGrad = no_grad();
            foreach (var (live, copy) in saved)
            {
                live.detach().copy_(copy);
                copy.Dispose();
            }
            saved.Clear();
        }
    }
}
