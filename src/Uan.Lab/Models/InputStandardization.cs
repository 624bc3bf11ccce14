using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Models;

/// <summary>
/// The <c>std</c> input norm: y = (x − m_c) / s_c with a fixed per-channel mean m and standard deviation s, computed
/// once from a dataset (the AdaMatch trainer uses the source training set as the network sees it, after padding and
/// tiling, on the 0–255 scale) and then frozen: no parameters, the same map in training and evaluation, nothing
/// updated by a forward pass. m and s are buffers, so they are saved with the model. s is the population standard
/// deviation over all images and pixels of a channel, floored at <see cref="MinStd"/>.
/// </summary>
public sealed class InputStandardization : nn.Module<Tensor, Tensor>
{
    /// <summary>Floor of s (a constant channel would otherwise divide by zero).</summary>
    public const double MinStd = 1e-3;

    /// <summary>Images per chunk when computing the statistics.</summary>
    public const int Chunk = 2048;

    private Tensor mean;
    private Tensor std;
    private Tensor set;

    /// <summary>A module for <paramref name="channels"/> channels whose statistics are not yet set.</summary>
    public InputStandardization(long channels) : base("std")
    {
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "must be ≥ 1");
        Channels = channels;
        mean = zeros(channels);
        std = ones(channels);
        set = zeros(1, ScalarType.Int64);
        RegisterComponents();
    }

    /// <summary>Channels C.</summary>
    public long Channels { get; }

    /// <summary>True once <see cref="SetStatistics"/> or <see cref="SetFrom"/> has run (or a saved model was loaded).</summary>
    public bool IsSet => set.item<long>() != 0;

    /// <summary>The per-channel mean m, [C] (a copy).</summary>
    public Tensor Mean => mean.clone();

    /// <summary>The per-channel standard deviation s, [C] (a copy).</summary>
    public Tensor Std => std.clone();

    /// <summary>Sets m and s ([C] each; s floored at <see cref="MinStd"/>).</summary>
    public void SetStatistics(Tensor channelMean, Tensor channelStd)
    {
        if (!channelMean.shape.SequenceEqual(new[] { Channels }) || !channelStd.shape.SequenceEqual(new[] { Channels }))
            throw new ArgumentException($"std input norm: statistics must be [{Channels}].");
        using var noGrad = no_grad();
        mean.copy_(channelMean.to(mean.dtype));
        std.copy_(channelStd.to(std.dtype).clamp_min(MinStd));
        set.fill_(1);
    }

    /// <summary>
    /// Sets m and s from every image of <paramref name="images"/> passed through <paramref name="pipeline"/> in
    /// evaluation mode (deterministic), in chunks of <see cref="Chunk"/>, with sums in double precision.
    /// </summary>
    public void SetFrom(ImageDataset images, DataPipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(pipeline);
        var sum = new double[Channels];
        var squares = new double[Channels];
        long count = 0;
        using var generator = new Generator(0);
        for (long start = 0; start < images.Count; start += Chunk)
        {
            using var scope = NewDisposeScope();
            var x = pipeline.Apply(images.Images.narrow(0, start, Math.Min(Chunk, images.Count - start)), false, generator)
                .to(ScalarType.Float64);
            if (x.shape[1] != Channels)
                throw new ArgumentException($"std input norm: {Channels} channels, but the images have {x.shape[1]}.");
            var s = x.sum([0, 2, 3]).data<double>().ToArray();
            var q = x.square().sum([0, 2, 3]).data<double>().ToArray();
            for (int c = 0; c < Channels; c++) { sum[c] += s[c]; squares[c] += q[c]; }
            count += x.shape[0] * x.shape[2] * x.shape[3];
        }
        if (count == 0) throw new ArgumentException("std input norm: no images to compute the statistics from.");
        var m = sum.Select(v => v / count).ToArray();
        var sd = m.Select((v, c) => Math.Sqrt(Math.Max(squares[c] / count - v * v, 0))).ToArray();
        using var ms = tensor(m);
        using var ss = tensor(sd);
        SetStatistics(ms, ss);
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        if (!IsSet) throw new InvalidOperationException("std input norm: statistics not set (SetFrom or SetStatistics first)");
        if (x.dim() < 2 || x.shape[1] != Channels)
            throw new ArgumentException($"std input norm: expected [N, {Channels}, ...], got [{string.Join(", ", x.shape)}].");
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[1] = Channels;
        return (x - mean.view(shape)) / std.view(shape);
    }
}

/// <summary>
/// Input norm specs: every <see cref="Norms"/> spec, plus <c>std</c> (no options), the fixed per-channel
/// standardisation <see cref="InputStandardization"/>.
/// </summary>
public static class InputNorms
{
    /// <summary>The spec of <see cref="InputStandardization"/>.</summary>
    public const string Standardize = "std";

    /// <summary>True when <paramref name="spec"/> is <c>std</c> (case and surrounding spaces ignored).</summary>
    public static bool IsStandardize(string spec) => spec.Trim().Equals(Standardize, StringComparison.OrdinalIgnoreCase);

    /// <summary>Canonical form of an input norm spec; throws <see cref="ArgumentException"/> naming the problem.</summary>
    public static string Parse(string spec)
    {
        if (spec is not null && spec.Trim().StartsWith(Standardize + ":", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"Input norm '{spec}': std takes no options (it standardises each channel with the source training set's mean and std).", nameof(spec));
        return spec is not null && IsStandardize(spec) ? Standardize : Norms.Parse(spec!).ToString();
    }

    /// <summary>Kind of an input norm spec (std, bn, uan, …).</summary>
    public static string Kind(string spec) => IsStandardize(spec) ? Standardize : Norms.Parse(spec).Kind;

    /// <summary>The module of an input norm spec for <paramref name="channels"/> channels.</summary>
    public static nn.Module<Tensor, Tensor> Create(string spec, long channels) =>
        IsStandardize(spec) ? new InputStandardization(channels) : Norms.Create(spec, channels);
}
