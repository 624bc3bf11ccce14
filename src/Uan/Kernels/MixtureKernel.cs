using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static Uan.Kernels.KernelMath;
using Mixture = Uan.Kernels.MixtureKernel.Mixture;

namespace Uan.Kernels;

/// <summary>
/// The fused passes shared by every UAN / Mixture Normalization transform, over an [N, C, S] input. Per element,
/// with d_k = x − μ_k and c_k = x − m_k:
/// ℓ_k = log λ_k − ½ log σ²_k − d_k²/(2σ²_k), τ = softmax_k ℓ, y = Σ_k τ_k r_k c_k, out = w·y + b,
/// where (μ, σ², log λ) is the mixture that gives the responsibilities and (m_k, r_k) the centre and scale each
/// component normalises with: Paper uses m = μ, r = λ^(−1/2) σ^(−1); the batch / running transforms use their
/// component statistics, r = λ^(−1/2) (v + eps)^(−1/2). Nothing of size |x| is kept between passes: each pass
/// recomputes τ from x (K exps per element), which costs less than writing and re-reading K·|x| values.
/// Work is split over channels × batch blocks (for [N, C] inputs in the channel-lanes layout, groups of channels ×
/// row blocks); every item sums into its own slots (double, flushed from vector lanes once per chunk of 32 vectors)
/// and the slots are added afterwards in a fixed order, so no locks and the same result on every run. The passes themselves are in
/// <see cref="MixtureKernel{T, TV}"/>, once per vector width; the entry points here pick the width in use
/// (<see cref="Simd.Wide"/>).
/// </summary>
internal static unsafe class MixtureKernel
{
    /// <summary>
    /// Per-(k, c) constants in double, [K, C] row-major: responsibility mixture (Mu, LogLambda, Var), output centre
    /// and scale, optional affine [C].
    /// </summary>
    internal sealed record Mixture(int K, long C, double[] Mu, double[] LogLambda, double[] Var, double[] Center,
        double[] Scale, double[]? W, double[]? B)
    {
        /// <summary>Paper mode: centre μ, scale λ^(−1/2) σ^(−1).</summary>
        public static Mixture Paper(int k, long c, double[] mu, double[] logLambda, double[] variance, double[]? w,
            double[]? b)
        {
            var scale = new double[k * c];
            for (int i = 0; i < scale.Length; i++) scale[i] = Math.Exp(-0.5 * logLambda[i]) / Math.Sqrt(variance[i]);
            return new Mixture(k, c, mu, logLambda, variance, mu, scale, w, b);
        }

        /// <summary>Given component statistics: centre m, scale λ^(−1/2) (v + eps)^(−1/2).</summary>
        public static Mixture WithStatistics(int k, long c, double[] mu, double[] logLambda, double[] variance,
            double[] mean, double[] var, double eps, double[]? w, double[]? b)
        {
            var scale = new double[k * c];
            for (int i = 0; i < scale.Length; i++) scale[i] = Math.Exp(-0.5 * logLambda[i]) / Math.Sqrt(var[i] + eps);
            return new Mixture(k, c, mu, logLambda, variance, mean, scale, w, b);
        }
    }

    /// <summary>Slots per component in the main backward pass (see <see cref="MixtureKernel{T, TV}"/>).</summary>
    internal const int PerK = 5;

    /// <summary>Raw sums of the main backward pass, [C, 5K + 2] (see the slot layout above).</summary>
    internal sealed record BackwardSums(int K, long C, double[] Sums)
    {
        int Slots => PerK * K + 2;
        public double A(int k, long c) => Sums[c * Slots + PerK * k];
        public double F(int k, long c) => Sums[c * Slots + PerK * k + 1];
        public double D(int k, long c) => Sums[c * Slots + PerK * k + 2];
        public double B(int k, long c) => Sums[c * Slots + PerK * k + 3];
        public double E(int k, long c) => Sums[c * Slots + PerK * k + 4];
        public double G(long c) => Sums[c * Slots + PerK * K];
        public double GY(long c) => Sums[c * Slots + PerK * K + 1];
    }


    // ---- Entry points: each runs the pass at the vector width in use (Simd.Wide).

    /// <summary>Forward pass; returns Σ log Σ_k λ_k N(x | μ_k, σ²_k) (without ½ log 2π) when withLogZ, else 0.</summary>
    public static double Forward<T>(T* x, T* y, long n, long s, Mixture m, bool withLogZ)
        where T : unmanaged, INumberBase<T> => Simd.Wide
        ? MixtureKernel<T, WideSimd<T>>.Forward(x, y, n, s, m, withLogZ)
        : MixtureKernel<T, NativeSimd<T>>.Forward(x, y, n, s, m, withLogZ);

    /// <summary>The τ-weighted sums [C, 4K] (per channel, per k: Σ τ, Σ τ d, Σ τ d², Σ τ²; d = x − μ_k).</summary>
    public static double[] Stats<T>(T* x, long n, long s, Mixture m)
        where T : unmanaged, INumberBase<T> => Simd.Wide
        ? MixtureKernel<T, WideSimd<T>>.Stats(x, n, s, m)
        : MixtureKernel<T, NativeSimd<T>>.Stats(x, n, s, m);

    /// <summary>
    /// [C, K]: the largest log p_k = ℓ_k − max_j ℓ_j over the batch (within log K of the largest log τ_k). A pass
    /// without exps, run only when the moment sums say a component's τ may underflow.
    /// </summary>
    public static double[] MaxLogP<T>(T* x, long n, long s, Mixture m)
        where T : unmanaged, INumberBase<T> => Simd.Wide
        ? MixtureKernel<T, WideSimd<T>>.MaxLogP(x, n, s, m)
        : MixtureKernel<T, NativeSimd<T>>.MaxLogP(x, n, s, m);

    /// <summary>
    /// The sums of <see cref="Stats"/> with component k's τ weighed by exp(−shift[k, c]) ([K, C], ≤ 0), for
    /// components whose responsibilities underflow: the moments (ratios) are unchanged, and finite.
    /// </summary>
    public static double[] ShiftedStats<T>(T* x, long n, long s, Mixture m, double[] shift)
        where T : unmanaged, INumberBase<T> => Simd.Wide
        ? MixtureKernel<T, WideSimd<T>>.ShiftedStats(x, n, s, m, shift)
        : MixtureKernel<T, NativeSimd<T>>.ShiftedStats(x, n, s, m, shift);

    /// <summary>
    /// One EM E-step's sums, [C, 3K + 3]: per k Σ τ, Σ τ d, Σ τ d² (d = x − μ_k); then Σ log Σ_k exp ℓ_k and the
    /// channel's Σ (x − ref), Σ (x − ref)² (ref [C], a shift that keeps the variance sum well conditioned).
    /// Without <paramref name="withLogZ"/> the log-likelihood slot is 0 (one log per element less).
    /// </summary>
    public static double[] EmSums<T>(T* x, long n, long s, Mixture m, double[] reference, bool withLogZ = true)
        where T : unmanaged, INumberBase<T> => Simd.Wide
        ? MixtureKernel<T, WideSimd<T>>.EmSums(x, n, s, m, reference, withLogZ)
        : MixtureKernel<T, NativeSimd<T>>.EmSums(x, n, s, m, reference, withLogZ);

    /// <summary>[C, 2K]: per k, Σ g·w·τ_k and Σ g·w·τ_k (x − m_k).</summary>
    public static double[] OutputSums<T>(T* x, T* g, long n, long s, Mixture m) where T : unmanaged, INumberBase<T> =>
        Simd.Wide
            ? MixtureKernel<T, WideSimd<T>>.OutputSums(x, g, n, s, m)
            : MixtureKernel<T, NativeSimd<T>>.OutputSums(x, g, n, s, m);

    /// <summary>
    /// The main backward pass: writes dL/dx into gx (when not null) and returns the raw sums. alpha, beta, v are
    /// [K, C] (null: zero, the fixed-statistics case); gz is dL/d(Σ logZ), constant over elements. With batch
    /// statistics (alpha, beta given), outputSums is <see cref="OutputSums"/>'s result, whose A and F the pass reuses.
    /// </summary>
    public static BackwardSums Backward<T>(T* x, T* g, T* gx, long n, long s, Mixture m, double[]? alpha,
        double[]? beta, double[]? v, double gz, double[]? outputSums = null) where T : unmanaged, INumberBase<T> =>
        new(m.K, m.C, Simd.Wide
            ? MixtureKernel<T, WideSimd<T>>.Backward(x, g, gx, n, s, m, alpha, beta, v, gz, outputSums)
            : MixtureKernel<T, NativeSimd<T>>.Backward(x, g, gx, n, s, m, alpha, beta, v, gz, outputSums));
}

/// <summary>
/// The passes of <see cref="MixtureKernel"/> for element type T on vectors TV: one instantiation per
/// vector width, each specialised by the JIT.
/// </summary>
internal static unsafe class MixtureKernel<T, TV>
    where T : unmanaged, INumberBase<T>
    where TV : unmanaged, ISimd<TV, T>
{
    /// <summary>
    /// Vectors per chunk: the second step of every pass reads the chunk's scratch back from L1, and each float
    /// lane of a running sum adds at most this many terms before it goes to a double.
    /// </summary>
    const int ChunkVectors = 32;

    /// <summary>
    /// Largest per-work-item scratch (bytes) taken from the stack; thread-pool threads have about 1.5 MiB of it.
    /// The largest pass needs about 20 KiB for K = 3 with 512-bit vectors and stays below the limit up to K = 24, so
    /// the usual sizes never allocate.
    /// </summary>
    const int StackScratchLimit = 128 * 1024;

    /// <summary>This thread's scratch for work items above <see cref="StackScratchLimit"/> (pinned, grown on demand).</summary>
    [ThreadStatic] static byte[]? _heapScratch;

    /// <summary>
    /// The first 64-byte boundary in a stack buffer (allocated 64 bytes longer than needed). A 512-bit store
    /// that straddles two cache lines is split in two and cannot forward to the load that reads it back, and the
    /// passes store and reload their per-component scratch vectors on every element; the runtime aligns the stack
    /// to 16 bytes only.
    /// </summary>
    static TV* Aligned(byte* raw) => (TV*)(((nint)raw + 63) & ~(nint)63);

    /// <summary>
    /// Layout of a channel's constants and per-element scratch, as vectors: four channel-wide values at negative
    /// offsets, then <see cref="Size"/> consecutive vectors per component (its constants, then its scratch p_k and
    /// h_k). One pointer to component 0 reaches everything, and being a local it stays in a register: fields of a
    /// struct passed by reference would be reloaded after every store through a vector pointer.
    /// </summary>
    static class F
    {
        // Per component: μ, log λ − ½ log σ², −1/(2σ²), −1/σ², centre, scale, the batch-backward α, β, 2β, −v;
        // scratch: p (or ℓ), h (or log p, or T), d = x − μ.
        public const int W = -1, B = -2, Gz = -3, Ref = -4, Globals = 4;
        public const int Mu = 0, Cl = 1, NegHiv = 2, NegIv = 3, Center = 4, Scale = 5, Alpha = 6, Beta = 7,
            TwoBeta = 8, NegV = 9, P = 10, H = 11, D = 12, Size = 13;
    }

    /// <summary>Vectors a channel block needs for K components (globals included).</summary>
    static int BlockVectors(int k) => F.Globals + F.Size * k;

    /// <summary>
    /// Fills a channel block (from <paramref name="block"/>, <see cref="BlockVectors"/> vectors) and returns the
    /// pointer to its component 0. With <paramref name="lanes"/> = 1 every lane holds channel ch0's constants; with
    /// lanes = the vector width, lane i holds channel ch0 + i's (the channel-lanes layout; lanes past the last
    /// channel repeat its constants, and their zero mask keeps them out of every sum). Constants are formed in
    /// double and rounded to T once.
    /// </summary>
    static TV* Init(TV* block, Mixture m, long ch0, int lanes, double[]? alpha, double[]? beta, double[]? v,
        double gz, double[]? reference)
    {
        TV* cst = block + F.Globals;
        for (int i = 0; i < lanes; i++)
        {
            long ch = Math.Min(ch0 + i, m.C - 1);
            Set(cst + F.W, i, m.W?[ch] ?? 1.0);
            Set(cst + F.B, i, m.B?[ch] ?? 0.0);
            Set(cst + F.Gz, i, gz);
            Set(cst + F.Ref, i, reference?[ch] ?? 0);
            for (int j = 0; j < m.K; j++)
            {
                long kc = j * m.C + ch;
                double var = m.Var[kc];
                TV* cj = cst + j * F.Size;
                Set(cj + F.Mu, i, m.Mu[kc]);
                Set(cj + F.Cl, i, m.LogLambda[kc] - 0.5 * Math.Log(var));
                Set(cj + F.NegHiv, i, -0.5 / var);
                Set(cj + F.NegIv, i, -1 / var);
                Set(cj + F.Center, i, m.Center[kc]);
                Set(cj + F.Scale, i, m.Scale[kc]);
                Set(cj + F.Alpha, i, alpha?[kc] ?? 0);
                Set(cj + F.Beta, i, beta?[kc] ?? 0);
                Set(cj + F.TwoBeta, i, 2 * (beta?[kc] ?? 0));
                Set(cj + F.NegV, i, -(v?[kc] ?? 0));
            }
        }
        if (lanes == 1)
            for (TV* p = block; p < block + BlockVectors(m.K); p++) *p = TV.Create(*(T*)p);
        return cst;
    }

    static void Set(TV* vector, int lane, double value) => ((T*)vector)[lane] = T.CreateTruncating(value);

    /// <summary>
    /// Adds a running sum to its double slot(s): with lanes = 1 the sum of all lanes to slot[0], else lane i to
    /// slot[i] (the channel-lanes layout, one channel per lane).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Flush(double* slot, TV a, int lanes)
    {
        if (lanes == 1)
        {
            *slot += TV.Sum(a);
            return;
        }
        TV.AddLanes(slot, a);
    }

    /// <summary>
    /// Writes p_k = exp(ℓ_k − max ℓ) into each component's P slot and returns mask / Σ p (so τ_k = p_k · result,
    /// and padding lanes, mask 0, get τ = 0 and add nothing anywhere). mx and sum are max ℓ and Σ p.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV Softmax(TV xv, TV mask, TV* cst, int k, out TV mx, out TV sum, bool keepD = false)
    {
        mx = Logits(xv, cst, k, F.P, keepD);
        sum = TV.Zero;
        TV* end = cst + k * F.Size;
        for (TV* cj = cst; cj < end; cj += F.Size)
        {
            var pj = TV.ExpOfNonPositive(cj[F.P] - mx);
            cj[F.P] = pj;
            sum += pj;
        }
        return mask / sum;
    }

    /// <summary>
    /// Writes ℓ_k = log λ_k − ½ log σ²_k − (x − μ_k)²/(2σ²_k) into each component's slot (and, with
    /// <paramref name="keepD"/>, d_k = x − μ_k into its D slot, for the backward passes); returns max ℓ.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV Logits(TV xv, TV* cst, int k, int slot, bool keepD = false)
    {
        var d0 = xv - cst[F.Mu];
        var mx = TV.MultiplyAdd(cst[F.NegHiv] * d0, d0, cst[F.Cl]);
        cst[slot] = mx;
        if (keepD) cst[F.D] = d0;
        TV* end = cst + k * F.Size;
        for (TV* cj = cst + F.Size; cj < end; cj += F.Size)
        {
            var d = xv - cj[F.Mu];
            var lj = TV.MultiplyAdd(cj[F.NegHiv] * d, d, cj[F.Cl]);
            cj[slot] = lj;
            if (keepD) cj[F.D] = d;
            mx = TV.Max(mx, lj);
        }
        return mx;
    }

    /// <summary>Writes p_k · factor into each component's scratch (sc, sc + ChunkVectors, …).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Scaled(TV* cst, int k, TV* sc, TV factor)
    {
        TV* end = cst + k * F.Size;
        for (TV* cj = cst; cj < end; cj += F.Size, sc += ChunkVectors) *sc = cj[F.P] * factor;
    }

    /// <summary>
    /// One kind of pass, in two steps per chunk of up to <see cref="ChunkVectors"/> vectors of one channel. First,
    /// per vector and for all K components at once: the output (if any), the per-component values the sums need
    /// (written to a small scratch), channel-wide running sums. Then, per component, one loop over the chunk adds
    /// its sums in registers. In a single loop the K·CompSums running sums cannot all be registers, and kept in
    /// memory their loads and stores cost more than the second, L1-resident read.
    /// </summary>
    interface IPass
    {
        /// <summary>Sums per component: slots j·CompSums … of the result.</summary>
        static abstract int CompSums { get; }

        /// <summary>Channel-wide sums, after the components' slots.</summary>
        static abstract int GlobalSums { get; }

        /// <summary>Scratch vectors per component and element vector (first step writes, second reads).</summary>
        static abstract int CompScratch { get; }

        /// <summary>Scratch vectors per element vector, besides x itself.</summary>
        static abstract int VecScratch { get; }

        /// <summary>
        /// First step for one vector. Component j's scratch q goes to sc[(j·CompScratch + q)·ChunkVectors], the
        /// vector scratch q to vs[q·ChunkVectors]; channel-wide terms are added to glob. Returns the output vector
        /// (ignored when the sweep writes none).
        /// </summary>
        static abstract TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max);

        /// <summary>
        /// Second step: component cj's sums over the chunk's first <paramref name="used"/> vectors, into slots
        /// sums[q·lanes …] (see <see cref="Flush"/>).
        /// </summary>
        static abstract void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes);
    }

    /// <summary>
    /// Runs a pass over all rows: full vectors in place, the tail of each row through the same code on a padded
    /// copy with a 0/1 mask (padding lanes get τ = 0 and add nothing). Returns the per-channel slot sums [C, slots]
    /// and (if asked) the lane maxima [C, K] the pass kept. Inputs without spatial extent ([N, C]) whose channels
    /// fill the vector lanes (<see cref="KernelMath.ChannelLanes"/>) run in the channel-lanes layout instead: a
    /// vector holds consecutive channels of one row, each lane with its channel's constants, and a work item walks
    /// the rows of one group of channels.
    /// </summary>
    static (double[] Sums, double[]? Max) Sweep<TPass>(T* x, T* g, T* output, long n, long s, Mixture m,
        double[]? alpha, double[]? beta, double[]? v, double gz, bool withMax, double[]? reference = null)
        where TPass : IPass
    {
        int k = m.K;
        long c = m.C;
        int slots = TPass.CompSums * k + TPass.GlobalSums;
        int vn = TV.Count;
        bool channelLanes = ChannelLanes(c, s, vn);
        int lanes = channelLanes ? vn : 1;
        long groups = channelLanes ? (c + vn - 1) / vn : c;
        int blocks = Blocks(groups, n, n * c * s);
        var partial = new double[c * blocks * slots];
        var partialMax = withMax ? new double[c * blocks * k] : null;
        // Straight to optimised code: at tier 0 the vector wrappers are calls, not instructions, and a layer's
        // kernels are called too few times (once per step) to be promoted before a short run has ended.
        Run(groups, n, blocks, n * c * s, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (grp, b, n0, n1) =>
        {
            const int chunk = ChunkVectors;
            int compScratch = TPass.CompScratch * k;
            int globals = Math.Max(TPass.GlobalSums, 1);
            int vectorBytes = (BlockVectors(k) + (compScratch + 1 + TPass.VecScratch) * chunk + globals + k) * sizeof(TV);
            int scratchBytes = vectorBytes + 64 + Math.Max(slots * lanes, 1) * sizeof(double);
            // K comes from the caller: above a fixed size the scratch goes to a pinned array rather than the stack,
            // which a large K would overflow (the process dies without an exception).
            byte[]? heap = null;
            if (scratchBytes > StackScratchLimit)
            {
                // Kept per thread: a pass runs many work items, and training many passes.
                heap = _heapScratch;
                if (heap is null || heap.Length < scratchBytes)
                    _heapScratch = heap = GC.AllocateUninitializedArray<byte>(scratchBytes, pinned: true);
            }
            byte* raw;
            if (heap is null)
            {
                byte* onStack = stackalloc byte[scratchBytes];
                raw = onStack;
            }
            else raw = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(heap));
            // All through local pointers, which the JIT keeps in registers.
            long ch0 = channelLanes ? (long)grp * vn : grp;
            TV* block = Aligned(raw);
            TV* cst = Init(block, m, ch0, lanes, alpha, beta, v, gz, reference);
            TV* sc = block + BlockVectors(k);
            TV* xs = sc + compScratch * chunk;
            TV* vs = xs + chunk;
            TV* glob = vs + TPass.VecScratch * chunk;
            TV* max = glob + globals;
            double* sums = (double*)(raw + vectorBytes + 64);
            for (int j = 0; j < slots * lanes; j++) sums[j] = 0;
            for (int j = 0; j < globals; j++) glob[j] = TV.Zero;
            var lowest = TV.Create(T.CreateTruncating(double.NegativeInfinity));
            for (int j = 0; j < k; j++) max[j] = lowest;
            T* tx = stackalloc T[vn];
            T* tg = stackalloc T[vn];
            T* tm = stackalloc T[vn];
            T* to = stackalloc T[vn];
            int used = 0;
            // Captured values as locals: the JIT keeps them in registers, where it would reload a closure's fields
            // after every store through a pointer.
            T* px = x, pg = g, po = output;
            int kk = k;
            if (channelLanes)
            {
                // One vector per row: channels ch0 … ch0 + vn − 1 (fewer in the last group, through a masked copy).
                int width = (int)Math.Min(vn, c - ch0);
                for (long row = n0; row < n1; row++)
                {
                    long off = row * c + ch0;
                    TV xv, gv, mask;
                    if (width == vn)
                    {
                        xv = TV.Load(px + off);
                        gv = pg != null ? TV.Load(pg + off) : TV.Zero;
                        mask = TV.One;
                    }
                    else
                    {
                        Pad(px + off, pg == null ? null : pg + off, width, tx, tg, tm);
                        xv = TV.Load(tx);
                        gv = TV.Load(tg);
                        mask = TV.Load(tm);
                    }
                    var r = TPass.First(xv, gv, mask, cst, kk, sc + used, vs + used, glob, max);
                    if (po != null)
                    {
                        if (width == vn) TV.Store(po + off, r);
                        else StorePart(po + off, r, width, to);
                    }
                    if (TPass.CompSums > 0) xs[used] = xv;
                    if (++used == chunk)
                    {
                        SumChunk<TPass>(used, kk, cst, sc, xs, vs, glob, sums, lanes);
                        used = 0;
                    }
                }
            }
            else
            {
                long ch = grp;
                long len = s, stride = c * s, full = s - s % vn;
                for (long row = n0; row < n1; row++)
                {
                    long off = (row * c + ch) * len;
                    T* xr = px + off, gr = pg == null ? null : pg + off, outr = po == null ? null : po + off;
                    for (long i = 0; i < full; i += vn)
                    {
                        // The same position of the next row: its run starts on a new page, where the hardware
                        // prefetcher would start cold.
                        if (Sse.IsSupported)
                        {
                            Sse.Prefetch0(xr + stride + i);
                            if (gr != null) Sse.Prefetch0(gr + stride + i);
                        }
                        var xv = TV.Load(xr + i);
                        var gv = gr != null ? TV.Load(gr + i) : TV.Zero;
                        var r = TPass.First(xv, gv, TV.One, cst, kk, sc + used, vs + used, glob, max);
                        if (outr != null) TV.Store(outr + i, r);
                        if (TPass.CompSums > 0) xs[used] = xv;
                        if (++used == chunk)
                        {
                            SumChunk<TPass>(used, kk, cst, sc, xs, vs, glob, sums, 1);
                            used = 0;
                        }
                    }
                    if (full < len)
                    {
                        // The row's tail, on a padded copy with a 0/1 mask.
                        int rest = (int)(len - full);
                        Pad(xr + full, gr == null ? null : gr + full, rest, tx, tg, tm);
                        var xv = TV.Load(tx);
                        var r = TPass.First(xv, TV.Load(tg), TV.Load(tm), cst, kk, sc + used, vs + used, glob, max);
                        if (outr != null) StorePart(outr + full, r, rest, to);
                        if (TPass.CompSums > 0) xs[used] = xv;
                        if (++used == chunk)
                        {
                            SumChunk<TPass>(used, kk, cst, sc, xs, vs, glob, sums, 1);
                            used = 0;
                        }
                    }
                }
            }
            if (used > 0) SumChunk<TPass>(used, k, cst, sc, xs, vs, glob, sums, lanes);
            // Per channel of the group: its slots (lane i in the channel-lanes layout) and its maxima.
            for (int i = 0; i < lanes && ch0 + i < c; i++)
            {
                long ch = ch0 + i;
                var dst = partial.AsSpan((int)((ch * blocks + b) * slots), slots);
                for (int j = 0; j < slots; j++) dst[j] = sums[j * lanes + i];
                if (partialMax is not null)
                    for (int j = 0; j < k; j++)
                    {
                        double mj = double.NegativeInfinity;
                        if (channelLanes) mj = TV.Lane(max[j], i);
                        else
                            for (int e = 0; e < vn; e++) mj = Math.Max(mj, TV.Lane(max[j], e));
                        partialMax[(ch * blocks + b) * k + j] = mj;
                    }
            }
            // The pinned array must outlive every access through raw.
            GC.KeepAlive(heap);
        });

        var total = new double[c * slots];
        var totalMax = withMax ? new double[c * k] : null;
        for (long ch = 0; ch < c; ch++)
            for (int b = 0; b < blocks; b++)
            {
                if (totalMax is not null && b == 0)
                    for (int j = 0; j < k; j++) totalMax[ch * k + j] = double.NegativeInfinity;
                for (int j = 0; j < slots; j++) total[ch * slots + j] += partial[(ch * blocks + b) * slots + j];
                if (totalMax is not null)
                    for (int j = 0; j < k; j++)
                        totalMax[ch * k + j] = Math.Max(totalMax[ch * k + j], partialMax![(ch * blocks + b) * k + j]);
            }
        return (total, totalMax);
    }

    /// <summary>
    /// A part-filled vector (a row's tail, or the last group of channel lanes): the first <paramref name="count"/>
    /// values of x (and g, when not null) into the padded copies tx and tg, zeros after them, and the 0/1 mask into tm.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Pad(T* x, T* g, int count, T* tx, T* tg, T* tm)
    {
        for (int j = 0; j < TV.Count; j++)
        {
            bool inside = j < count;
            tx[j] = inside ? x[j] : T.Zero;
            tg[j] = inside && g != null ? g[j] : T.Zero;
            tm[j] = inside ? T.One : T.Zero;
        }
    }

    /// <summary>
    /// Writes the first <paramref name="count"/> lanes of r to dst, through the scratch <paramref name="to"/>. (Both
    /// helpers are inlined: as calls inside the sweep's row loop they made the JIT spill vectors around them, which
    /// doubled the forward pass's time.)
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StorePart(T* dst, TV r, int count, T* to)
    {
        TV.Store(to, r);
        for (int j = 0; j < count; j++) dst[j] = to[j];
    }

    /// <summary>The second step over a chunk, then the channel-wide running sums into their double slots.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void SumChunk<TPass>(int used, int k, TV* cst, TV* sc, TV* xs, TV* vs, TV* glob, double* sums,
        int lanes) where TPass : IPass
    {
        if (TPass.CompSums > 0)
            for (int j = 0; j < k; j++)
                TPass.Second(used, cst, cst + j * F.Size, sc + j * TPass.CompScratch * ChunkVectors, xs, vs,
                    sums + j * TPass.CompSums * lanes, lanes);
        for (int q = 0; q < TPass.GlobalSums; q++)
        {
            Flush(sums + (k * TPass.CompSums + q) * lanes, glob[q], lanes);
            glob[q] = TV.Zero;
        }
    }

    // ---- Forward: out = w·Σ τ_k r_k (x − m_k) + b; channel-wide Σ log Σ_k exp ℓ_k (the log-likelihood, if kept).

    struct ForwardPass : IPass
    {
        public static int CompSums => 0;
        public static int GlobalSums => 0;
        public static int CompScratch => 0;
        public static int VecScratch => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max) =>
            Output(xv, cst, k, out _, out _);

        public static void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes) { }
    }

    struct ForwardLogZPass : IPass
    {
        public static int CompSums => 0;
        public static int GlobalSums => 1;
        public static int CompScratch => 0;
        public static int VecScratch => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max)
        {
            var r = Output(xv, cst, k, out var mx, out var sum);
            glob[0] += (mx + TV.Log(sum)) * mask;
            return r;
        }

        public static void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes) { }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV Output(TV xv, TV* cst, int k, out TV mx, out TV sum)
    {
        var inv = Softmax(xv, TV.One, cst, k, out mx, out sum);
        var num = TV.Zero;
        TV* end = cst + k * F.Size;
        for (TV* cj = cst; cj < end; cj += F.Size)
        {
            num = TV.MultiplyAdd(cj[F.P] * cj[F.Scale], xv - cj[F.Center], num);
        }
        return TV.MultiplyAdd(num * inv, cst[F.W], cst[F.B]);
    }

    /// <summary>Forward pass; returns Σ log Σ_k λ_k N(x | μ_k, σ²_k) (without ½ log 2π) when withLogZ, else 0.</summary>
    public static double Forward(T* x, T* y, long n, long s, Mixture m, bool withLogZ)
    {
        if (!withLogZ)
        {
            Sweep<ForwardPass>(x, null, y, n, s, m, null, null, null, 0, false);
            return 0;
        }
        var (sums, _) = Sweep<ForwardLogZPass>(x, null, y, n, s, m, null, null, null, 0, false);
        return sums.Sum();
    }

    // ---- Batch statistics: per k, W = Σ τ, P = Σ τ d, Q = Σ τ d², R = Σ τ² (d = x − μ_k); max log p_k apart.
    // The shifted variant weighs τ_k by exp(−shift_k) (shift_k in the Alpha slot, ≤ 0, zero unless component k's τ
    // underflows over the whole batch). The moments are ratios, so the factor cancels; without it a component far
    // from every input has τ = 0 in float32 everywhere and 0/0 moments.

    /// <summary>
    /// Like <see cref="Softmax"/>, and also writes log p_k = ℓ_k − max ℓ into each component's H slot, which the
    /// exp may have flushed to zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV SoftmaxWithLog(TV xv, TV mask, TV* cst, int k)
    {
        var mx = Logits(xv, cst, k, F.H);
        var sum = TV.Zero;
        TV* end = cst + k * F.Size;
        for (TV* cj = cst; cj < end; cj += F.Size)
        {
            var lp = cj[F.H] - mx;
            cj[F.H] = lp;
            var pj = TV.ExpOfNonPositive(lp);
            cj[F.P] = pj;
            sum += pj;
        }
        return mask / sum;
    }

    /// <summary>
    /// Second step of the moment passes: per component, Σ w, Σ w d, Σ w d² and (when <paramref name="squares"/>)
    /// Σ w², with w the scratch weight and d = x − μ.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Moments(int used, TV* cj, TV* w, TV* xs, double* sums, bool squares, int lanes)
    {
        TV mu = cj[F.Mu];
        TV a0 = TV.Zero, a1 = TV.Zero, a2 = TV.Zero, a3 = TV.Zero;
        for (int i = 0; i < used; i++)
        {
            var wi = w[i];
            var d = xs[i] - mu;
            var wd = wi * d;
            a0 += wi;
            a1 += wd;
            a2 = TV.MultiplyAdd(wd, d, a2);
            if (squares) a3 = TV.MultiplyAdd(wi, wi, a3);
        }
        Flush(sums, a0, lanes);
        Flush(sums + lanes, a1, lanes);
        Flush(sums + 2 * lanes, a2, lanes);
        if (squares) Flush(sums + 3 * lanes, a3, lanes);
    }

    struct StatsPass : IPass
    {
        public static int CompSums => 4;
        public static int GlobalSums => 0;
        public static int CompScratch => 1;
        public static int VecScratch => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max)
        {
            var inv = Softmax(xv, mask, cst, k, out _, out _);
            Scaled(cst, k, sc, inv);
            return TV.Zero;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes) =>
            Moments(used, cj, sc, xs, sums, true, lanes);
    }

    /// <summary>Per component, the largest log p_k = ℓ_k − max_j ℓ_j over the batch: no exp, no sums.</summary>
    struct MaxLogPPass : IPass
    {
        public static int CompSums => 0;
        public static int GlobalSums => 0;
        public static int CompScratch => 0;
        public static int VecScratch => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max)
        {
            var mx = Logits(xv, cst, k, F.H);
            TV* end = cst + k * F.Size;
            for (TV* cj = cst; cj < end; cj += F.Size, max++) *max = TV.MaxWhere(mask, *max, cj[F.H] - mx);
            return TV.Zero;
        }

        public static void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes) { }
    }

    struct ShiftedStatsPass : IPass
    {
        public static int CompSums => 4;
        public static int GlobalSums => 0;
        public static int CompScratch => 1;
        public static int VecScratch => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max)
        {
            var inv = SoftmaxWithLog(xv, mask, cst, k);
            // τ_k e^(−shift_k) = exp(log p_k − shift_k) / Σ p, ≤ 1 since shift_k is the batch maximum of log p_k;
            // but not in the padding lanes of a row's tail (x = 0, not part of that maximum), where the argument can
            // be large: the clamped exp keeps it finite, so the zero mask gives 0 rather than ∞ · 0.
            TV* end = cst + k * F.Size;
            for (TV* cj = cst; cj < end; cj += F.Size, sc += ChunkVectors) *sc = TV.Exp(cj[F.H] - cj[F.Alpha]) * inv;
            return TV.Zero;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes) =>
            Moments(used, cj, sc, xs, sums, true, lanes);
    }

    /// <summary>The τ-weighted sums [C, 4K] (per channel, per k: Σ τ, Σ τ d, Σ τ d², Σ τ²; d = x − μ_k).</summary>
    public static double[] Stats(T* x, long n, long s, Mixture m) =>
        Sweep<StatsPass>(x, null, null, n, s, m, null, null, null, 0, false).Sums;

    /// <summary>
    /// [C, K]: the largest log p_k = ℓ_k − max_j ℓ_j over the batch (within log K of the largest log τ_k).
    /// </summary>
    public static double[] MaxLogP(T* x, long n, long s, Mixture m) =>
        Sweep<MaxLogPPass>(x, null, null, n, s, m, null, null, null, 0, true).Max!;

    /// <summary>
    /// The sums of <see cref="Stats"/> with component k's τ weighed by exp(−shift[k, c]) ([K, C], ≤ 0), for
    /// components whose responsibilities underflow: the moments (ratios) are unchanged, and finite.
    /// </summary>
    public static double[] ShiftedStats(T* x, long n, long s, Mixture m, double[] shift) =>
        Sweep<ShiftedStatsPass>(x, null, null, n, s, m, shift, null, null, 0, false).Sums;

    // ---- EM: per k, Σ τ, Σ τ d, Σ τ d² (d = x − μ_k); then Σ log Σ_k exp ℓ_k, Σ (x − ref), Σ (x − ref)².

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void EmFirst(TV xv, TV mask, TV* cst, int k, TV* sc, TV* glob, bool withLogZ)
    {
        var inv = Softmax(xv, mask, cst, k, out var mx, out var sum);
        Scaled(cst, k, sc, inv);
        if (withLogZ) glob[0] += (mx + TV.Log(sum)) * mask;
        var dx = (xv - cst[F.Ref]) * mask;
        glob[1] += dx;
        glob[2] = TV.MultiplyAdd(dx, dx, glob[2]);
    }

    struct EmPass : IPass
    {
        public static int CompSums => 3;
        public static int GlobalSums => 3;
        public static int CompScratch => 1;
        public static int VecScratch => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max)
        {
            EmFirst(xv, mask, cst, k, sc, glob, true);
            return TV.Zero;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes) =>
            Moments(used, cj, sc, xs, sums, false, lanes);
    }

    /// <summary><see cref="EmPass"/> without the log-likelihood (its slot stays 0): one log per element less.</summary>
    struct EmNoLogZPass : IPass
    {
        public static int CompSums => 3;
        public static int GlobalSums => 3;
        public static int CompScratch => 1;
        public static int VecScratch => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max)
        {
            EmFirst(xv, mask, cst, k, sc, glob, false);
            return TV.Zero;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes) =>
            Moments(used, cj, sc, xs, sums, false, lanes);
    }

    /// <summary>
    /// One EM E-step's sums, [C, 3K + 3]: per k Σ τ, Σ τ d, Σ τ d² (d = x − μ_k); then Σ log Σ_k exp ℓ_k and the
    /// channel's Σ (x − ref), Σ (x − ref)² (ref [C], a shift that keeps the variance sum well conditioned).
    /// Without <paramref name="withLogZ"/> the log-likelihood slot is 0.
    /// </summary>
    public static double[] EmSums(T* x, long n, long s, Mixture m, double[] reference, bool withLogZ) => withLogZ
        ? Sweep<EmPass>(x, null, null, n, s, m, null, null, null, 0, false, reference).Sums
        : Sweep<EmNoLogZPass>(x, null, null, n, s, m, null, null, null, 0, false, reference).Sums;

    // ---- Backward, first pass of the batch transform: per k, Σ gy τ and Σ gy τ c (c = x − m_k).

    struct OutputSumsPass : IPass
    {
        public static int CompSums => 2;
        public static int GlobalSums => 0;
        public static int CompScratch => 1;
        public static int VecScratch => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max)
        {
            var inv = Softmax(xv, mask, cst, k, out _, out _);
            var gy = gv * cst[F.W] * inv;
            Scaled(cst, k, sc, gy);
            return TV.Zero;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes)
        {
            TV center = cj[F.Center];
            TV a0 = TV.Zero, a1 = TV.Zero;
            for (int i = 0; i < used; i++)
            {
                var gt = sc[i];
                a0 += gt;
                a1 = TV.MultiplyAdd(gt, xs[i] - center, a1);
            }
            Flush(sums, a0, lanes);
            Flush(sums + lanes, a1, lanes);
        }
    }

    /// <summary>[C, 2K]: per k, Σ g·w·τ_k and Σ g·w·τ_k (x − m_k).</summary>
    public static double[] OutputSums(T* x, T* g, long n, long s, Mixture m) =>
        Sweep<OutputSumsPass>(x, g, null, n, s, m, null, null, null, 0, false).Sums;

    // ---- Backward, main pass. With gy = g·w, h_k = r_k c_k, the loss sees τ_k through
    // T_k = gy h_k + α_k c_k + β_k (c_k² − v_k) (the α, β terms carry the batch statistics' dependence on τ; zero
    // for fixed statistics), so e_k = dL/dℓ_k = τ_k (T_k − Σ_j τ_j T_j + gz) (gz: the log-likelihood output), and
    // dL/dx = gy Σ τ_k r_k + Σ τ_k (α_k + 2 β_k c_k) − Σ e_k d_k / σ²_k.
    // Slots per k: A = Σ gy τ, F = Σ gy τ c, D = Σ e, B = Σ e d, E = Σ e d²; then Σ g and Σ g·y. The batch
    // transform's first backward pass has summed A and F already (they give α and β), so its main pass sums only
    // D, B and E and takes A and F from there.

    /// <summary>Second step, D, B and E of component cj from e (and, with <paramref name="taus"/>, A and F too).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void BackwardSums(int used, TV* cj, TV* taus, TV* es, TV* gys, TV* xs, double* sums, int lanes)
    {
        TV mu = cj[F.Mu], center = cj[F.Center];
        TV a0 = TV.Zero, a1 = TV.Zero, a2 = TV.Zero, a3 = TV.Zero, a4 = TV.Zero;
        for (int i = 0; i < used; i++)
        {
            var xv = xs[i];
            if (taus != null)
            {
                var gt = gys[i] * taus[i];
                a0 += gt;
                a1 = TV.MultiplyAdd(gt, xv - center, a1);
            }
            var e = es[i];
            var d = xv - mu;
            var ed = e * d;
            a2 += e;
            a3 += ed;
            a4 = TV.MultiplyAdd(ed, d, a4);
        }
        if (taus != null)
        {
            Flush(sums, a0, lanes);
            Flush(sums + lanes, a1, lanes);
            sums += 2 * lanes;
        }
        Flush(sums, a2, lanes);
        Flush(sums + lanes, a3, lanes);
        Flush(sums + 2 * lanes, a4, lanes);
    }

    /// <summary>
    /// Fixed statistics (Paper, running): α = β = 0, so Σ_j τ_j T_j = gy·y and e_k = τ_k (gy (h_k − y) + gz).
    /// Scratch: τ_k and e_k per component, gy per vector.
    /// </summary>
    struct FixedBackwardPass : IPass
    {
        public static int CompSums => MixtureKernel.PerK;
        public static int GlobalSums => 2;
        public static int CompScratch => 2;
        public static int VecScratch => 1;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max)
        {
            var inv = Softmax(xv, mask, cst, k, out _, out _, true);
            var num = TV.Zero;
            TV* end = cst + k * F.Size;
            for (TV* cj = cst; cj < end; cj += F.Size)
            {
                var h = cj[F.Scale] * (xv - cj[F.Center]);
                cj[F.H] = h;
                num = TV.MultiplyAdd(cj[F.P], h, num);
            }
            var y = num * inv;
            var gy = gv * cst[F.W];
            glob[0] += gv;
            glob[1] = TV.MultiplyAdd(gv, y, glob[1]);
            var gz = cst[F.Gz];
            var gx = TV.Zero;
            for (TV* cj = cst; cj < end; cj += F.Size, sc += 2 * ChunkVectors)
            {
                var tau = cj[F.P] * inv;
                var gt = gy * tau;
                var e = TV.MultiplyAdd(gt, cj[F.H] - y, tau * gz);
                gx = TV.MultiplyAdd(gt, cj[F.Scale], gx);
                gx = TV.MultiplyAdd(cj[F.NegIv] * e, cj[F.D], gx);
                sc[0] = tau;
                sc[ChunkVectors] = e;
            }
            vs[0] = gy;
            return gx;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes) =>
            BackwardSums(used, cj, sc, sc + ChunkVectors, vs, xs, sums, lanes);
    }

    /// <summary>
    /// Batch statistics: the general case, after the first backward pass (which summed A and F). Scratch: e_k per
    /// component.
    /// </summary>
    struct BackwardPass : IPass
    {
        public static int CompSums => 3;
        public static int GlobalSums => 2;
        public static int CompScratch => 1;
        public static int VecScratch => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV First(TV xv, TV gv, TV mask, TV* cst, int k, TV* sc, TV* vs, TV* glob, TV* max)
        {
            var inv = Softmax(xv, mask, cst, k, out _, out _, true);
            var gy = gv * cst[F.W];
            var y = TV.Zero;
            var sbar = TV.Zero;
            var gx = TV.Zero;
            TV* end = cst + k * F.Size;
            for (TV* cj = cst; cj < end; cj += F.Size)
            {
                var tau = cj[F.P] * inv;
                cj[F.P] = tau;
                var c = xv - cj[F.Center];
                var h = cj[F.Scale] * c;
                y = TV.MultiplyAdd(tau, h, y);
                // T = gy h + α c + β (c² − v), with −v kept as the constant.
                var t = TV.MultiplyAdd(cj[F.Beta], TV.MultiplyAdd(c, c, cj[F.NegV]),
                    TV.MultiplyAdd(cj[F.Alpha], c, gy * h));
                cj[F.H] = t;
                sbar = TV.MultiplyAdd(tau, t, sbar);
                // dL/dx's first part, τ (gy r + α + 2β c).
                gx = TV.MultiplyAdd(tau, TV.MultiplyAdd(cj[F.TwoBeta], c, TV.MultiplyAdd(gy, cj[F.Scale], cj[F.Alpha])), gx);
            }
            glob[0] += gv;
            glob[1] = TV.MultiplyAdd(gv, y, glob[1]);
            var shift = cst[F.Gz] - sbar;
            for (TV* cj = cst; cj < end; cj += F.Size, sc += ChunkVectors)
            {
                // And its second, − e d / σ².
                var e = cj[F.P] * (cj[F.H] + shift);
                gx = TV.MultiplyAdd(cj[F.NegIv] * e, cj[F.D], gx);
                *sc = e;
            }
            return gx;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Second(int used, TV* cst, TV* cj, TV* sc, TV* xs, TV* vs, double* sums, int lanes) =>
            BackwardSums(used, cj, null, sc, null, xs, sums, lanes);
    }

    /// <summary>
    /// The main backward pass: writes dL/dx into gx (when not null) and returns the raw sums [C, 5K + 2]. alpha,
    /// beta, v are [K, C] (null: zero, the fixed-statistics case); gz is dL/d(Σ logZ), constant over elements. With
    /// batch statistics, <paramref name="outputSums"/> ([C, 2K], from <see cref="OutputSums"/>) supplies the A and
    /// F slots, which the pass then does not sum again.
    /// </summary>
    public static double[] Backward(T* x, T* g, T* gx, long n, long s, Mixture m, double[]? alpha,
        double[]? beta, double[]? v, double gz, double[]? outputSums)
    {
        if (alpha is null && beta is null)
            return Sweep<FixedBackwardPass>(x, g, gx, n, s, m, null, null, null, gz, false).Sums;
        if (outputSums is null)
            throw new ArgumentNullException(nameof(outputSums), "the batch backward pass needs the output sums");
        var part = Sweep<BackwardPass>(x, g, gx, n, s, m, alpha, beta, v, gz, false).Sums;
        // Into the fixed pass's layout: per k A, F (from the output sums), D, B, E; then Σ g, Σ g·y.
        int k = m.K, perK = MixtureKernel.PerK, slots = perK * k + 2, partSlots = 3 * k + 2;
        var full = new double[m.C * slots];
        for (long ch = 0; ch < m.C; ch++)
        {
            for (int j = 0; j < k; j++)
            {
                long at = ch * slots + perK * j;
                full[at] = outputSums[ch * 2 * k + 2 * j];
                full[at + 1] = outputSums[ch * 2 * k + 2 * j + 1];
                for (int q = 0; q < 3; q++) full[at + 2 + q] = part[ch * partSlots + 3 * j + q];
            }
            full[ch * slots + perK * k] = part[ch * partSlots + 3 * k];
            full[ch * slots + perK * k + 1] = part[ch * partSlots + 3 * k + 1];
        }
        return full;
    }
}
