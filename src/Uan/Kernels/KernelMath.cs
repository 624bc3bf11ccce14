using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Uan.Kernels;

/// <summary>
/// Shared pieces of the fused kernels: vector exp/log for a generic float type, the channel × batch-block work
/// split, and conversion of the small [K, C] / [C] tensors to double arrays.
/// </summary>
internal static unsafe class KernelMath
{
    /// <summary>Below this many input elements the work is too small to pay for Parallel.For's overhead.</summary>
    const long ParallelThreshold = 1 << 15;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Exp<T>(Vector<T> v) where T : unmanaged
    {
        // typeof tests are JIT-time constants, so each instantiation keeps only its own branch.
        if (typeof(T) == typeof(float)) return Vector.As<float, T>(ExpSingle(Vector.As<T, float>(v)));
        return Vector.As<double, T>(Vector.Exp(Vector.As<T, double>(v)));
    }

    /// <summary>
    /// exp for float lanes in float arithmetic (Cephes expf: Cody–Waite reduction by ln 2 and a degree-6
    /// polynomial, about 1 ulp), with fused multiply-adds. Vector.Exp(Vector&lt;float&gt;) widens to double, which
    /// makes it several times slower, and the kernels spend much of their time here. Inputs are clamped to
    /// [−87, 88]: below, the result is e^−87 ≈ 1.6e−38 instead of a subnormal or 0, which no sum here can tell
    /// apart (the kernels only exponentiate ℓ − max ℓ ≤ 0, and a weight that small is 0 against the max's 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> ExpSingle(Vector<float> x)
    {
        x = Vector.Min(Vector.Max(x, new Vector<float>(-87.0f)), new Vector<float>(88.0f));
        // n = round(x / ln 2) with the 1.5·2^23 trick: the sum's low mantissa bits hold n.
        var magic = new Vector<float>(12582912f);
        var t = Vector.FusedMultiplyAdd(x, new Vector<float>(1.44269504088896341f), magic);
        var n = t - magic;
        var r = Vector.FusedMultiplyAdd(n, new Vector<float>(-0.693359375f), x);
        r = Vector.FusedMultiplyAdd(n, new Vector<float>(2.12194440e-4f), r);
        var p = Vector.FusedMultiplyAdd(new Vector<float>(1.9875691500e-4f), r, new Vector<float>(1.3981999507e-3f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(8.3334519073e-3f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(4.1665795894e-2f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(1.6666665459e-1f));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(5.0000001201e-1f));
        p = Vector.FusedMultiplyAdd(p, r * r, r + Vector<float>.One);
        var bits = Vector.AsVectorInt32(t) - new Vector<int>(0x4B400000 - 127);
        return p * Vector.AsVectorSingle(Vector.ShiftLeft(bits, 23));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Log<T>(Vector<T> v) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Vector.As<float, T>(Vector.Log(Vector.As<T, float>(v)));
        return Vector.As<double, T>(Vector.Log(Vector.As<T, double>(v)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<T> Load<T>(T* p) where T : unmanaged => Unsafe.ReadUnaligned<Vector<T>>(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store<T>(T* p, Vector<T> v) where T : unmanaged => Unsafe.WriteUnaligned(p, v);

    /// <summary>Sum of the lanes, in double (the lanes themselves are few and short-lived).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum<T>(Vector<T> v) where T : unmanaged, INumberBase<T> =>
        double.CreateTruncating(Vector.Sum(v));

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
        return d.data<double>().ToArray();
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
