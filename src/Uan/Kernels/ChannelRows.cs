using static TorchSharp.torch;

namespace Uan.Kernels;

/// <summary>
/// Layout change for inputs whose per-(n, c) spatial run is short. The kernels vectorise along the contiguous
/// spatial run of each (sample, channel); with [N, C] input that run is one element, so every vector carries one
/// useful lane and a masked tail, and [512, 256] cost more than the tensor-op path. Such inputs go to the kernels as
/// [1, C, N·S] (channel rows, a transposed copy), where each channel is one long run, and the output comes back in
/// the caller's layout. Both moves are ordinary differentiable tensor ops, so autograd routes the gradients. [N, C]
/// inputs whose channels fill the vector lanes skip both: the kernels read them in place, a vector across channels.
/// </summary>
internal static class ChannelRows
{
    /// <summary>Off only for benchmarks that compare both layouts (bench/Uan.Bench rows).</summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>
    /// On only for benchmarks that compare layouts (bench/Uan.Bench overhead): channel rows even where the kernels
    /// would read [N, C] in place, across channels.
    /// </summary>
    internal static bool Force { get; set; }

    /// <summary>
    /// True when x ([N, C, ...], N &gt; 1) has spatial runs S that waste vector lanes: S is not a multiple of the
    /// vector width and shorter than four vectors (beyond that the masked tail costs under a quarter of the run),
    /// unless the kernels read it in place in their channel-lanes layout (<see cref="KernelMath.ChannelLanes"/>).
    /// </summary>
    public static bool Wanted(Tensor x)
    {
        var (n, c, s) = KernelMath.Dims(x);
        int lanes = Simd.Lanes(x.dtype == ScalarType.Float64);
        return Enabled && n > 1 && s % lanes != 0 && s < 4L * lanes && (Force || !KernelMath.ChannelLanes(c, s, lanes));
    }

    /// <summary>x [N, C, ...] as a contiguous [1, C, N·S].</summary>
    public static Tensor To(Tensor x)
    {
        var (n, c, s) = KernelMath.Dims(x);
        return x.reshape(n, c, s).transpose(0, 1).contiguous().view(1, c, n * s);
    }

    /// <summary>The inverse of <see cref="To"/>: y [1, C, N·S] back to <paramref name="shape"/>, contiguous.</summary>
    public static Tensor From(Tensor y, long[] shape)
    {
        long n = shape[0], c = shape[1];
        return y.view(c, n, -1).transpose(0, 1).contiguous().view(shape);
    }
}
