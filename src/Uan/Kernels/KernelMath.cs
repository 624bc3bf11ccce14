using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Uan.Kernels;

/// <summary>
/// Shared pieces of the fused kernels: the channel × batch-block work split, tensor pointers and sizes, and
/// conversion of the small [K, C] / [C] tensors to double arrays. (Vector operations: <see cref="ISimd{TV, T}"/>.)
/// </summary>
internal static unsafe class KernelMath
{
    /// <summary>Below this many input elements the work is too small to pay for Parallel.For's overhead.</summary>
    const long ParallelThreshold = 1 << 15;

    /// <summary>
    /// Number of batch blocks per channel so that channels × blocks gives every core a few work items (parameter
    /// gradients are per channel, so each item owns a private partial-sum slot and nothing is shared).
    /// </summary>
    public static int Blocks(long channels, long batch, long total)
    {
        if (total < ParallelThreshold) return 1;
        long want = 4L * Environment.ProcessorCount;
        long blocks = (want + channels - 1) / channels;
        return (int)Math.Clamp(blocks, 1, batch);
    }

    /// <summary>
    /// True when an [N, C, S] input runs in the kernels' channel-lanes layout: no spatial extent (S = 1, as [N, C]
    /// features), and channels that fill the vector lanes (a multiple of the width, or at least four vectors' worth,
    /// so at most a quarter of the last group's lanes idle). Each vector then holds consecutive channels of one row,
    /// read in place; otherwise a vector holds consecutive elements of one channel's run.
    /// </summary>
    public static bool ChannelLanes(long channels, long s, int lanes) =>
        s == 1 && (channels % lanes == 0 || channels >= 4L * lanes);

    /// <summary>Runs body(channel, block, nStart, nEnd) over channels × blocks, in parallel when it pays.</summary>
    public static void Run(long channels, long batch, int blocks, long total, Action<int, int, long, long> body)
    {
        int items = (int)(channels * blocks);
        void Item(int i)
        {
            int c = i / blocks, b = i % blocks;
            long n0 = batch * b / blocks, n1 = batch * (b + 1) / blocks;
            body(c, b, n0, n1);
        }
        if (total < ParallelThreshold || items == 1)
            for (int i = 0; i < items; i++) Item(i);
        else
            Parallel.For(0, items, Item);
    }

    /// <summary>A small tensor's values as doubles, in row-major order (null stays null).</summary>
    public static double[]? Values(Tensor? t)
    {
        if (t is null) return null;
        using var d = t.detach().to(ScalarType.Float64).contiguous();
        // Straight from the storage: the tensor accessor's ToArray costs tens of microseconds even for [K, C], and
        // a layer converts five such tensors per call.
        return MemoryMarshal.Cast<byte, double>(d.bytes).ToArray();
    }

    /// <summary>A double array as a tensor of the given shape and dtype.</summary>
    public static Tensor ToTensor(double[] values, long[] shape, ScalarType dtype)
    {
        using var t = tensor(values, shape, ScalarType.Float64);
        return t.to(dtype);
    }

    /// <summary>
    /// The tensor's element pointer (caller checked CPU, contiguity, dtype and size &lt; 2 GB). TorchSharp exposes the
    /// storage as a byte span over native memory; native memory does not move, so its address stays valid while
    /// the tensor lives.
    /// </summary>
    public static T* Ptr<T>(Tensor t) where T : unmanaged =>
        (T*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));

    /// <summary>Sizes of an [N, C, ...] tensor: batch N, channels C and the product S of the remaining dims.</summary>
    public static (long N, long C, long S) Dims(Tensor x)
    {
        long s = 1;
        for (int i = 2; i < x.dim(); i++) s *= x.shape[i];
        return (x.shape[0], x.shape[1], s);
    }
}
