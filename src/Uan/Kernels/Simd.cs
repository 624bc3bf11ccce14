using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Uan.Kernels;

/// <summary>
/// A vector of T lanes with the operations the fused kernels use. The kernels are generic over it so one source
/// serves two widths: <see cref="NativeSimd{T}"/> wraps <see cref="Vector{T}"/> (the runtime's default, 256-bit on
/// x64 unless the process sets DOTNET_MaxVectorTBitWidth) and <see cref="WideSimd{T}"/> wraps
/// <see cref="Vector512{T}"/>, for AVX-512. (The BCL's own vector interface is internal, so the two are thin
/// wrappers.) Both are one-field structs with inlined members, so each instantiation compiles to plain SIMD code.
/// </summary>
internal unsafe interface ISimd<TV, T> : IAdditionOperators<TV, TV, TV>, ISubtractionOperators<TV, TV, TV>,
    IMultiplyOperators<TV, TV, TV>, IDivisionOperators<TV, TV, TV>
    where TV : unmanaged, ISimd<TV, T> where T : unmanaged
{
    static abstract int Count { get; }
    static abstract TV Zero { get; }
    static abstract TV One { get; }
    static abstract TV Create(T value);
    static abstract TV Load(T* p);
    static abstract void Store(T* p, TV v);
    /// <summary>Lane maximum with the hardware's NaN rule (one instruction; IEEE's rule costs three at 512 bits).</summary>
    static abstract TV Max(TV a, TV b);
    static abstract TV Exp(TV v);

    /// <summary>
    /// <see cref="Exp"/> for arguments ≤ 0 (or NaN), as every softmax here takes: the same results there, without
    /// the upper clamp that only larger arguments need.
    /// </summary>
    static abstract TV ExpOfNonPositive(TV v);

    /// <summary>a·b + c, rounded once.</summary>
    static abstract TV MultiplyAdd(TV a, TV b, TV c);
    static abstract TV Log(TV v);

    /// <summary>Sum of the lanes, in double.</summary>
    static abstract double Sum(TV v);

    /// <summary>dst[i] += lane i, in double, for every lane.</summary>
    static abstract void AddLanes(double* dst, TV v);

    /// <summary>max(current, candidate) in the lanes where mask &gt; 0, current elsewhere.</summary>
    static abstract TV MaxWhere(TV mask, TV current, TV candidate);

    static abstract double Lane(TV v, int i);
}

/// <summary>Which vector width the kernels run at.</summary>
internal static class Simd
{
    static readonly ScopedSwitch WideSwitch = new(Vector512.IsHardwareAccelerated);

    /// <summary>
    /// True: <see cref="Vector512{T}"/>; false: <see cref="Vector{T}"/>. Defaults to 512 bits wherever the hardware
    /// accelerates them (AVX-512), since the kernels are compute bound; tests and the benchmark switch it with
    /// <see cref="Use"/> to check and compare both widths.
    /// </summary>
    internal static bool Wide => WideSwitch.Value;

    /// <summary>Lanes per vector for the element type (float or double) at the width in use.</summary>
    public static int Lanes(bool float64) => float64
        ? (Wide ? Vector512<double>.Count : Vector<double>.Count)
        : (Wide ? Vector512<float>.Count : Vector<float>.Count);

    /// <summary>
    /// Sets the width for the current thread / async flow until the returned scope is disposed (tests and
    /// benchmarks; concurrent code keeps its own).
    /// </summary>
    internal static IDisposable Use(bool wide) => WideSwitch.Use(wide);
}

/// <summary><see cref="Vector{T}"/> as an <see cref="ISimd{TV, T}"/>.</summary>
internal readonly unsafe struct NativeSimd<T>(Vector<T> v) : ISimd<NativeSimd<T>, T> where T : unmanaged, INumberBase<T>
{
    readonly Vector<T> v = v;

    public static int Count => Vector<T>.Count;
    public static NativeSimd<T> Zero => new(Vector<T>.Zero);
    public static NativeSimd<T> One => new(Vector<T>.One);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> operator +(NativeSimd<T> a, NativeSimd<T> b) => new(a.v + b.v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> operator -(NativeSimd<T> a, NativeSimd<T> b) => new(a.v - b.v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> operator *(NativeSimd<T> a, NativeSimd<T> b) => new(a.v * b.v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> operator /(NativeSimd<T> a, NativeSimd<T> b) => new(a.v / b.v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> Create(T value) => new(new Vector<T>(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> Load(T* p) => new(Unsafe.ReadUnaligned<Vector<T>>(p));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(T* p, NativeSimd<T> a) => Unsafe.WriteUnaligned(p, a.v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> Max(NativeSimd<T> a, NativeSimd<T> b) => new(Vector.MaxNative(a.v, b.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> Exp(NativeSimd<T> a) => Exp(a, true);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> ExpOfNonPositive(NativeSimd<T> a) => Exp(a, false);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static NativeSimd<T> Exp(NativeSimd<T> a, bool clampAbove)
    {
        // typeof tests are JIT-time constants, so each instantiation keeps only its own branch.
        if (typeof(T) == typeof(float))
            return new(Vector.As<float, T>(ExpSingle(Vector.As<T, float>(a.v), clampAbove)));
        return new(Vector.As<double, T>(Vector.Exp(Vector.As<T, double>(a.v))));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> MultiplyAdd(NativeSimd<T> a, NativeSimd<T> b, NativeSimd<T> c)
    {
        if (typeof(T) == typeof(float))
            return new(Vector.As<float, T>(Vector.FusedMultiplyAdd(Vector.As<T, float>(a.v), Vector.As<T, float>(b.v),
                Vector.As<T, float>(c.v))));
        return new(Vector.As<double, T>(Vector.FusedMultiplyAdd(Vector.As<T, double>(a.v), Vector.As<T, double>(b.v),
            Vector.As<T, double>(c.v))));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> Log(NativeSimd<T> a)
    {
        if (typeof(T) == typeof(float)) return new(Vector.As<float, T>(Vector.Log(Vector.As<T, float>(a.v))));
        return new(Vector.As<double, T>(Vector.Log(Vector.As<T, double>(a.v))));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum(NativeSimd<T> a) => double.CreateTruncating(Vector.Sum(a.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddLanes(double* dst, NativeSimd<T> a)
    {
        int half = Vector<double>.Count;
        if (typeof(T) == typeof(float))
        {
            Vector.Widen(Vector.As<T, float>(a.v), out var low, out var high);
            (Unsafe.ReadUnaligned<Vector<double>>(dst) + low).CopyTo(new Span<double>(dst, half));
            (Unsafe.ReadUnaligned<Vector<double>>(dst + half) + high).CopyTo(new Span<double>(dst + half, half));
            return;
        }
        (Unsafe.ReadUnaligned<Vector<double>>(dst) + Vector.As<T, double>(a.v)).CopyTo(new Span<double>(dst, half));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static NativeSimd<T> MaxWhere(NativeSimd<T> mask, NativeSimd<T> current, NativeSimd<T> candidate) =>
        new(Vector.ConditionalSelect(Vector.GreaterThan(mask.v, Vector<T>.Zero), Vector.Max(current.v, candidate.v),
            current.v));

    public static double Lane(NativeSimd<T> a, int i) => double.CreateTruncating(a.v[i]);

    /// <summary>
    /// Coefficients c2…c6 of the polynomial 1 + r + c2 r² + … + c6 r⁶ for e^r on [−½ ln 2, ½ ln 2]: minimax in
    /// relative error (3.1e−9, by the Remez exchange; 1 and r exact). Evaluated by Horner's rule with fused
    /// multiply-adds, six operations in all; the float results are within 1 ulp of e^x (tested).
    /// </summary>
    internal const float E2 = 0.49999994f, E3 = 0.16666521f, E4 = 0.041668389f, E5 = 0.0083687101f,
        E6 = 0.0013814613f;

    /// <summary>
    /// exp for float lanes in float arithmetic (Cody–Waite reduction by ln 2 in two parts, as Cephes expf, and the
    /// polynomial above), with fused multiply-adds. Vector.Exp(Vector&lt;float&gt;) widens to double, which
    /// makes it several times slower, and the kernels spend much of their time here. Inputs are clamped to
    /// [−87, 88]: below, the result is e^−87 ≈ 1.6e−38 instead of a subnormal or 0, which no sum here can tell
    /// apart (the kernels only exponentiate ℓ − max ℓ ≤ 0, and a weight that small is 0 against the max's 1).
    /// Without <paramref name="clampAbove"/> the caller guarantees x ≤ 0 (or NaN), where the upper clamp does
    /// nothing. <see cref="WideSimd{T}.ExpSingle"/> computes the same at 512 bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> ExpSingle(Vector<float> x, bool clampAbove = true)
    {
        x = Vector.Max(x, new Vector<float>(-87.0f));
        if (clampAbove) x = Vector.Min(x, new Vector<float>(88.0f));
        // n = round(x / ln 2) with the 1.5·2^23 trick: the sum's low mantissa bits hold n.
        var magic = new Vector<float>(12582912f);
        var t = Vector.FusedMultiplyAdd(x, new Vector<float>(1.44269504088896341f), magic);
        var n = t - magic;
        var r = Vector.FusedMultiplyAdd(n, new Vector<float>(-0.693359375f), x);
        r = Vector.FusedMultiplyAdd(n, new Vector<float>(2.12194440e-4f), r);
        var p = Vector.FusedMultiplyAdd(new Vector<float>(E6), r, new Vector<float>(E5));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(E4));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(E3));
        p = Vector.FusedMultiplyAdd(p, r, new Vector<float>(E2));
        p = Vector.FusedMultiplyAdd(p, r, Vector<float>.One);
        p = Vector.FusedMultiplyAdd(p, r, Vector<float>.One);
        var bits = Vector.AsVectorInt32(t) - new Vector<int>(0x4B400000 - 127);
        return p * Vector.AsVectorSingle(Vector.ShiftLeft(bits, 23));
    }
}

/// <summary><see cref="Vector512{T}"/> as an <see cref="ISimd{TV, T}"/>.</summary>
internal readonly unsafe struct WideSimd<T>(Vector512<T> v) : ISimd<WideSimd<T>, T> where T : unmanaged, INumberBase<T>
{
    readonly Vector512<T> v = v;

    public static int Count => Vector512<T>.Count;
    public static WideSimd<T> Zero => new(Vector512<T>.Zero);
    public static WideSimd<T> One => new(Vector512<T>.One);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> operator +(WideSimd<T> a, WideSimd<T> b) => new(a.v + b.v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> operator -(WideSimd<T> a, WideSimd<T> b) => new(a.v - b.v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> operator *(WideSimd<T> a, WideSimd<T> b) => new(a.v * b.v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> operator /(WideSimd<T> a, WideSimd<T> b) => new(a.v / b.v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> Create(T value) => new(Vector512.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> Load(T* p) => new(Vector512.Load(p));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(T* p, WideSimd<T> a) => a.v.Store(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> Max(WideSimd<T> a, WideSimd<T> b) => new(Vector512.MaxNative(a.v, b.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> Exp(WideSimd<T> a) => Exp(a, true);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> ExpOfNonPositive(WideSimd<T> a) => Exp(a, false);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static WideSimd<T> Exp(WideSimd<T> a, bool clampAbove)
    {
        if (typeof(T) == typeof(float)) return new(ExpSingle(a.v.As<T, float>(), clampAbove).As<float, T>());
        return new(Vector512.Exp(a.v.As<T, double>()).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> MultiplyAdd(WideSimd<T> a, WideSimd<T> b, WideSimd<T> c)
    {
        if (typeof(T) == typeof(float))
            return new(Vector512.FusedMultiplyAdd(a.v.As<T, float>(), b.v.As<T, float>(), c.v.As<T, float>()).As<float, T>());
        return new(Vector512.FusedMultiplyAdd(a.v.As<T, double>(), b.v.As<T, double>(), c.v.As<T, double>())
            .As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> Log(WideSimd<T> a)
    {
        if (typeof(T) == typeof(float)) return new(LogSingle(a.v.As<T, float>()).As<float, T>());
        return new(Vector512.Log(a.v.As<T, double>()).As<double, T>());
    }

    /// <summary>
    /// log for float lanes in float arithmetic (Cephes logf: x = m·2^e with m in [√½, √2), log(1 + f) for
    /// f = m − 1 by a degree-9 polynomial, e·ln 2 added in two parts), with AVX-512's getexp / getmant splitting x.
    /// An EM step with the log-likelihood at [64, 128, 32, 32] takes 8 ms with it against 14–17 ms with the BCL's
    /// Vector512.Log (`bench/Uan.Bench series`). log 0 = −∞, log ∞ = ∞, log of a negative number or NaN = NaN;
    /// subnormal inputs are handled too (getexp normalises them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> LogSingle(Vector512<float> x)
    {
        if (!Avx512F.IsSupported) return Vector512.Log(x);
        var e = Avx512F.GetExponent(x);                                   // floor(log2 |x|)
        var m = Avx512F.GetMantissa(x, 0b1000);                           // [1, 2); NaN where x < 0
        var big = Vector512.GreaterThan(m, Vector512.Create(1.41421356237f));
        m = Vector512.ConditionalSelect(big, m * Vector512.Create(0.5f), m);
        e += Vector512.ConditionalSelect(big, Vector512<float>.One, Vector512<float>.Zero);
        var f = m - Vector512<float>.One;
        var z = f * f;
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(7.0376836292e-2f), f, Vector512.Create(-1.1514610310e-1f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(1.1676998740e-1f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(-1.2420140846e-1f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(1.4249322787e-1f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(-1.6668057665e-1f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(2.0000714765e-1f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(-2.4999993993e-1f));
        p = Vector512.FusedMultiplyAdd(p, f, Vector512.Create(3.3333331174e-1f));
        var y = p * f * z;
        y = Vector512.FusedMultiplyAdd(e, Vector512.Create(-2.12194440e-4f), y);
        y = Vector512.FusedMultiplyAdd(z, Vector512.Create(-0.5f), y);
        var r = f + y;
        r = Vector512.FusedMultiplyAdd(e, Vector512.Create(0.693359375f), r);
        // For 0 and +∞ getexp gives e = ∓∞, and the two parts of e·ln 2 have opposite signs (∞ − ∞ = NaN): set those
        // two results explicitly. NaN and negative inputs are NaN already (getmant's sign control).
        r = Vector512.ConditionalSelect(Vector512.Equals(x, Vector512<float>.Zero), Vector512.Create(float.NegativeInfinity), r);
        return Vector512.ConditionalSelect(Vector512.Equals(x, Vector512.Create(float.PositiveInfinity)), x, r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum(WideSimd<T> a) => double.CreateTruncating(Vector256.Sum(a.v.GetLower() + a.v.GetUpper()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddLanes(double* dst, WideSimd<T> a)
    {
        if (typeof(T) == typeof(float))
        {
            var f = a.v.As<T, float>();
            (Vector512.Load(dst) + Vector512.WidenLower(f)).Store(dst);
            (Vector512.Load(dst + 8) + Vector512.WidenUpper(f)).Store(dst + 8);
            return;
        }
        (Vector512.Load(dst) + a.v.As<T, double>()).Store(dst);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WideSimd<T> MaxWhere(WideSimd<T> mask, WideSimd<T> current, WideSimd<T> candidate) =>
        new(Vector512.ConditionalSelect(Vector512.GreaterThan(mask.v, Vector512<T>.Zero),
            Vector512.Max(current.v, candidate.v), current.v));

    public static double Lane(WideSimd<T> a, int i) => double.CreateTruncating(a.v[i]);

    /// <summary>
    /// <see cref="NativeSimd{T}.ExpSingle"/> at 512 bits: the same clamp to [−87, 88], reduction and polynomial, but
    /// the power of two is applied by AVX-512's scalef (p · 2^n in one instruction) instead of being built in the
    /// exponent bits: the same products, so the same results. (The upper clamp matters: padding lanes of a row's
    /// tail can exponentiate large values that a zero mask then multiplies, and e^88 · 0 is 0 where ∞ · 0 is NaN.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ExpSingle(Vector512<float> x, bool clampAbove = true)
    {
        if (!Avx512F.IsSupported) return ExpSingleOnPieces(x);
        x = Vector512.Max(x, Vector512.Create(-87.0f));
        if (clampAbove) x = Vector512.Min(x, Vector512.Create(88.0f));
        var magic = Vector512.Create(12582912f);
        var n = Vector512.FusedMultiplyAdd(x, Vector512.Create(1.44269504088896341f), magic) - magic;
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693359375f), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(2.12194440e-4f), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(NativeSimd<float>.E6), r, Vector512.Create(NativeSimd<float>.E5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(NativeSimd<float>.E4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(NativeSimd<float>.E3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(NativeSimd<float>.E2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        return Avx512F.Scale(p, n);
    }

    /// <summary>
    /// Where Vector512 is emulated in software (no AVX-512F: only the tests run this), the float exp of
    /// <see cref="NativeSimd{T}.ExpSingle"/> on each native-width piece: the same results, bit for bit.
    /// </summary>
    static Vector512<float> ExpSingleOnPieces(Vector512<float> x)
    {
        Span<float> lanes = stackalloc float[Vector512<float>.Count];
        x.CopyTo(lanes);
        for (int i = 0; i < lanes.Length; i += Vector<float>.Count)
            NativeSimd<float>.ExpSingle(new Vector<float>(lanes[i..])).CopyTo(lanes[i..]);
        return Vector512.Create<float>(lanes);
    }
}
