using TorchSharp;
using static TorchSharp.torch;
using static Uan.Kernels.KernelMath;

namespace Uan.Kernels;

/// <summary>Shared plumbing of the fused autograd nodes.</summary>
internal static unsafe class Fused
{
    /// <summary>
    /// TorchSharp materialises a missing output gradient from a tensor it allocated during the forward, inside the
    /// caller's dispose scope, which is gone by backward time (a crash when, say, only one of two outputs is used).
    /// The nodes switch materialisation off; a missing gradient arrives as an invalid tensor and counts as zero.
    /// </summary>
    public static bool Defined(List<Tensor> grads, int i) => i < grads.Count && grads[i] is { IsInvalid: false };

    /// <summary>dL/d out as a contiguous tensor in x's dtype (zeros when missing).</summary>
    public static Tensor Upstream(List<Tensor> grads, Tensor x) =>
        Defined(grads, 0) ? grads[0].to(x.dtype).contiguous() : zeros(x.shape, x.dtype, x.device);

    /// <summary>A gradient result moved out of the backward's dispose scope, or null when not wanted.</summary>
    public static Tensor Grad(bool need, double[] values, long[] shape, ScalarType dtype) =>
        need ? ToTensor(values, shape, dtype).MoveToOuterDisposeScope() : null!;

    public static bool Needs(object? t) => t is Tensor { requires_grad: true };

    public static double Forward(Tensor x, Tensor y, MixtureKernel.Mixture m, bool withLogZ)
    {
        var (n, _, s) = Dims(x);
        return x.dtype == ScalarType.Float32
            ? MixtureKernel.Forward(Ptr<float>(x), Ptr<float>(y), n, s, m, withLogZ)
            : MixtureKernel.Forward(Ptr<double>(x), Ptr<double>(y), n, s, m, withLogZ);
    }

    public static MixtureKernel.BackwardSums Backward(Tensor x, Tensor g, Tensor? gx, MixtureKernel.Mixture m,
        double[]? alpha, double[]? beta, double[]? v, double gz, double[]? outputSums = null)
    {
        var (n, _, s) = Dims(x);
        return x.dtype == ScalarType.Float32
            ? MixtureKernel.Backward(Ptr<float>(x), Ptr<float>(g), gx is null ? null : Ptr<float>(gx), n, s, m,
                alpha, beta, v, gz, outputSums)
            : MixtureKernel.Backward(Ptr<double>(x), Ptr<double>(g), gx is null ? null : Ptr<double>(gx), n, s, m,
                alpha, beta, v, gz, outputSums);
    }

    public static double[] Stats(Tensor x, MixtureKernel.Mixture m)
    {
        var (n, _, s) = Dims(x);
        return x.dtype == ScalarType.Float32
            ? MixtureKernel.Stats(Ptr<float>(x), n, s, m)
            : MixtureKernel.Stats(Ptr<double>(x), n, s, m);
    }

    public static double[] MaxLogP(Tensor x, MixtureKernel.Mixture m)
    {
        var (n, _, s) = Dims(x);
        return x.dtype == ScalarType.Float32
            ? MixtureKernel.MaxLogP(Ptr<float>(x), n, s, m)
            : MixtureKernel.MaxLogP(Ptr<double>(x), n, s, m);
    }

    public static double[] ShiftedStats(Tensor x, MixtureKernel.Mixture m, double[] shift)
    {
        var (n, _, s) = Dims(x);
        return x.dtype == ScalarType.Float32
            ? MixtureKernel.ShiftedStats(Ptr<float>(x), n, s, m, shift)
            : MixtureKernel.ShiftedStats(Ptr<double>(x), n, s, m, shift);
    }

    public static double[] OutputSums(Tensor x, Tensor g, MixtureKernel.Mixture m)
    {
        var (n, _, s) = Dims(x);
        return x.dtype == ScalarType.Float32
            ? MixtureKernel.OutputSums(Ptr<float>(x), Ptr<float>(g), n, s, m)
            : MixtureKernel.OutputSums(Ptr<double>(x), Ptr<double>(g), n, s, m);
    }

    /// <summary>
    /// The fused Paper transform: [y] or [y, mean log Σ_k λ_k N(x | μ_k, σ²_k) without ½ log 2π]. Like every entry
    /// here, it runs the kernel on the channel-rows layout when x's spatial runs are short (<see cref="ChannelRows"/>)
    /// and returns y in x's shape.
    /// </summary>
    public static List<Tensor> Paper(Tensor x, Tensor mu, Tensor logLambda, Tensor variance, Tensor? weight,
        Tensor? bias, bool withLogZ)
    {
        bool rows = ChannelRows.Wanted(x);
        var outputs = PaperFunction.apply(rows ? ChannelRows.To(x) : x, mu, logLambda, variance, weight!, bias!, withLogZ);
        if (rows) outputs[0] = ChannelRows.From(outputs[0], x.shape);
        return outputs;
    }

    /// <summary>The fused eval transform with given component statistics.</summary>
    public static Tensor Running(Tensor x, Tensor logLambda, Tensor mu, Tensor variance, Tensor mean, Tensor var,
        double eps, Tensor? weight, Tensor? bias)
    {
        bool rows = ChannelRows.Wanted(x);
        var y = RunningFunction.apply(rows ? ChannelRows.To(x) : x, logLambda, mu, variance, mean, var, weight!, bias!, eps)[0];
        return rows ? ChannelRows.From(y, x.shape) : y;
    }

    /// <summary>
    /// The fused batch transform, or null when the input has no finite responsibilities for some component (then
    /// the caller's tensor-op path handles it). A component whose τ underflows over the whole batch gets its
    /// moments from a second statistics pass with τ shifted in log space, as the tensor-op path does.
    /// </summary>
    public static (Tensor Output, UanFunctional.BatchMoments Moments)? Batch(Tensor x, Tensor logLambda, Tensor mu,
        Tensor variance, double eps, Tensor? weight, Tensor? bias)
    {
        if (ChannelRows.Wanted(x))
            return Batch(ChannelRows.To(x), logLambda, mu, variance, eps, weight, bias) is var (rowsY, rowsMoments)
                ? (ChannelRows.From(rowsY, x.shape), rowsMoments)
                : null;
        int k = (int)mu.shape[0];
        long c = x.shape[1];
        var lv = Values(logLambda)!;
        var mv = Values(mu)!;
        var vv = Values(variance)!;
        var probe = new MixtureKernel.Mixture(k, c, mv, lv, vv, mv, new double[k * c], null, null);
        var sums = Stats(x, probe);
        var stats = BatchStats.From(sums, k, c, mv);
        // Below this, τ (≤ K·max p) is close enough to the float range's end that the weighted moments lose
        // precision; in float64 the margin is the same in relative terms.
        double floor = x.dtype == ScalarType.Float32 ? -60 : -600;
        // τ_k ≤ p_k, so a component whose Σ τ_k reaches count·e^floor has max log p_k ≥ floor: only when some
        // component falls short (or a sum is not finite) is the exact maximum needed, from a pass without exps.
        double enough = x.NumberOfElements / c * Math.Exp(floor);
        if (sums.Any(v => !double.IsFinite(v)) || stats.W.Any(w => w < enough))
        {
            var maxLogP = MaxLogP(x, probe);
            if (maxLogP.Any(p => !double.IsFinite(p))) return null;
            if (maxLogP.Any(p => p < floor))
            {
                // maxLogP is [C, K]; the shift is [K, C], zero where τ is in range so those sums stay as they were.
                var shift = new double[k * c];
                for (long ch = 0; ch < c; ch++)
                    for (int j = 0; j < k; j++)
                        shift[j * c + ch] = maxLogP[ch * k + j] < floor ? maxLogP[ch * k + j] : 0;
                stats = BatchStats.From(ShiftedStats(x, probe, shift), k, c, mv);
            }
        }
        var outputs = BatchFunction.apply(x, logLambda, mu, variance, weight!, bias!,
            new BatchArgs(lv, mv, vv, stats, eps));
        long[] kc = { k, c };
        var moments = new UanFunctional.BatchMoments(ToTensor(stats.Mean, kc, x.dtype),
            ToTensor(stats.Var, kc, x.dtype), ToTensor(stats.Unbiased, kc, x.dtype));
        return (outputs[0], moments);
    }
}

/// <summary>τ-weighted batch moments per (k, c): W = Σ τ, mean, biased and unbiased variance.</summary>
internal sealed record BatchStats(double[] W, double[] Mean, double[] Var, double[] Unbiased)
{
    public static BatchStats From(double[] sums, int k, long c, double[] mu)
    {
        var w = new double[k * c];
        var mean = new double[k * c];
        var var = new double[k * c];
        var unbiased = new double[k * c];
        for (long ch = 0; ch < c; ch++)
            for (int j = 0; j < k; j++)
            {
                long kc = j * c + ch;
                long at = ch * 4 * k + 4 * j;
                double sw = sums[at], p = sums[at + 1] / sw, q = sums[at + 2] / sw, r = sums[at + 3];
                // Moments about μ_k (the mixture mean, near the batch mean), so E[d²] − E[d]² does not cancel badly.
                w[kc] = sw;
                mean[kc] = mu[kc] + p;
                var[kc] = Math.Max(q - p * p, 0);
                // Reliability-weights Bessel factor V1²/(V1² − V2), as the tensor-op path.
                double denom = sw * sw - r;
                unbiased[kc] = var[kc] * (denom > 0 ? sw * sw / Math.Max(denom, 1e-30 * sw * sw) : 1);
            }
        return new BatchStats(w, mean, var, unbiased);
    }
}

/// <summary>The non-tensor inputs of a batch node, computed before it runs.</summary>
internal sealed record BatchArgs(double[] LogLambda, double[] Mu, double[] Var, BatchStats Stats, double Eps);

/// <summary>
/// Autograd node of the fused Paper mode. Inputs: x, μ, log λ, σ², weight?, bias?, withLogZ. Saves only x.
/// </summary>
internal sealed class PaperFunction : autograd.MultiTensorFunction<PaperFunction>
{
    /// <inheritdoc/>
    public override string Name => "UanPaperFused";

    /// <inheritdoc/>
    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var mu = (Tensor)vars[1];
        bool withLogZ = (bool)vars[6];
        var m = MixtureKernel.Mixture.Paper((int)mu.shape[0], x.shape[1], Values(mu)!, Values((Tensor)vars[2])!,
            Values((Tensor)vars[3])!, Values(vars[4] as Tensor), Values(vars[5] as Tensor));
        var y = empty(x.shape, x.dtype, x.device);
        double lz = Fused.Forward(x, y, m, withLogZ);
        ctx.set_materialize_grads(false);
        ctx.save_for_backward(new List<Tensor> { x });
        ctx.save_data("m", m);
        ctx.save_data("withLogZ", withLogZ);
        ctx.save_data("needs", vars.Take(6).Select(Fused.Needs).ToArray());
        var outputs = new List<Tensor> { y };
        if (withLogZ) outputs.Add(tensor(lz / x.numel(), x.dtype));
        return outputs;
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
    {
        using var scope = NewDisposeScope();
        var x = ctx.get_saved_variables()[0];
        var m = (MixtureKernel.Mixture)ctx.get_data("m");
        var needs = (bool[])ctx.get_data("needs");
        bool withLogZ = (bool)ctx.get_data("withLogZ");
        var g = Fused.Upstream(grads, x);
        double gz = withLogZ && Fused.Defined(grads, 1)
            ? grads[1].to(ScalarType.Float64).item<double>() / x.numel() : 0;
        var gx = needs[0] ? empty(x.shape, x.dtype, x.device) : null;
        var r = Fused.Backward(x, g, gx, m, null, null, null, gz);
        int k = m.K;
        long c = m.C;
        var gMu = new double[k * c];
        var gLogLambda = new double[k * c];
        var gVar = new double[k * c];
        var gW = new double[c];
        var gB = new double[c];
        for (long ch = 0; ch < c; ch++)
        {
            for (int j = 0; j < k; j++)
            {
                long kc = j * c + ch;
                double iv = 1 / m.Var[kc], sk = m.Scale[kc];
                double f = r.F(j, ch), d = r.D(j, ch);
                // Paper's μ and σ² enter both τ and the normalisation; log λ both τ and the scale λ^(−1/2).
                gMu[kc] = -sk * r.A(j, ch) + r.B(j, ch) * iv;
                gLogLambda[kc] = -0.5 * sk * f + d;
                gVar[kc] = -0.5 * sk * f * iv + 0.5 * (r.E(j, ch) * iv - d) * iv;
            }
            gW[ch] = r.GY(ch);
            gB[ch] = r.G(ch);
        }
        long[] kcShape = { k, c }, cShape = { c };
        return new List<Tensor>
        {
            needs[0] ? gx!.MoveToOuterDisposeScope() : null!,
            Fused.Grad(needs[1], gMu, kcShape, x.dtype),
            Fused.Grad(needs[2], gLogLambda, kcShape, x.dtype),
            Fused.Grad(needs[3], gVar, kcShape, x.dtype),
            Fused.Grad(needs[4], gW, cShape, x.dtype),
            Fused.Grad(needs[5], gB, cShape, x.dtype),
            null!,
        };
    }
}

/// <summary>
/// Autograd node of the fused eval transform with given component statistics. Inputs: x, log λ, μ, σ², component
/// mean, component variance, weight?, bias?, eps. Saves only x.
/// </summary>
internal sealed class RunningFunction : autograd.MultiTensorFunction<RunningFunction>
{
    /// <inheritdoc/>
    public override string Name => "UanRunningFused";

    /// <inheritdoc/>
    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var mu = (Tensor)vars[2];
        double eps = (double)vars[8];
        var m = MixtureKernel.Mixture.WithStatistics((int)mu.shape[0], x.shape[1], Values(mu)!,
            Values((Tensor)vars[1])!, Values((Tensor)vars[3])!, Values((Tensor)vars[4])!, Values((Tensor)vars[5])!,
            eps, Values(vars[6] as Tensor), Values(vars[7] as Tensor));
        var y = empty(x.shape, x.dtype, x.device);
        Fused.Forward(x, y, m, false);
        ctx.set_materialize_grads(false);
        ctx.save_for_backward(new List<Tensor> { x });
        ctx.save_data("m", m);
        ctx.save_data("componentVar", Values((Tensor)vars[5])!);
        ctx.save_data("eps", eps);
        ctx.save_data("needs", vars.Take(8).Select(Fused.Needs).ToArray());
        return new List<Tensor> { y };
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
    {
        using var scope = NewDisposeScope();
        var x = ctx.get_saved_variables()[0];
        var m = (MixtureKernel.Mixture)ctx.get_data("m");
        var cv = (double[])ctx.get_data("componentVar");
        double eps = (double)ctx.get_data("eps");
        var needs = (bool[])ctx.get_data("needs");
        var g = Fused.Upstream(grads, x);
        var gx = needs[0] ? empty(x.shape, x.dtype, x.device) : null;
        var r = Fused.Backward(x, g, gx, m, null, null, null, 0);
        int k = m.K;
        long c = m.C;
        var gLogLambda = new double[k * c];
        var gMu = new double[k * c];
        var gVar = new double[k * c];
        var gMean = new double[k * c];
        var gCv = new double[k * c];
        var gW = new double[c];
        var gB = new double[c];
        for (long ch = 0; ch < c; ch++)
        {
            for (int j = 0; j < k; j++)
            {
                long kc = j * c + ch;
                double iv = 1 / m.Var[kc], sk = m.Scale[kc];
                double f = r.F(j, ch), d = r.D(j, ch);
                gMu[kc] = r.B(j, ch) * iv;
                gVar[kc] = 0.5 * (r.E(j, ch) * iv - d) * iv;
                gLogLambda[kc] = d - 0.5 * sk * f;
                gMean[kc] = -sk * r.A(j, ch);
                gCv[kc] = -0.5 * sk * f / (cv[kc] + eps);
            }
            gW[ch] = r.GY(ch);
            gB[ch] = r.G(ch);
        }
        long[] kcShape = { k, c }, cShape = { c };
        return new List<Tensor>
        {
            needs[0] ? gx!.MoveToOuterDisposeScope() : null!,
            Fused.Grad(needs[1], gLogLambda, kcShape, x.dtype),
            Fused.Grad(needs[2], gMu, kcShape, x.dtype),
            Fused.Grad(needs[3], gVar, kcShape, x.dtype),
            Fused.Grad(needs[4], gMean, kcShape, x.dtype),
            Fused.Grad(needs[5], gCv, kcShape, x.dtype),
            Fused.Grad(needs[6], gW, cShape, x.dtype),
            Fused.Grad(needs[7], gB, cShape, x.dtype),
            null!,
        };
    }
}

/// <summary>
/// Autograd node of the fused batch transform (BatchStats training, Mixture Normalization). Inputs: x, log λ, μ, σ²,
/// weight?, bias?, and the <see cref="BatchArgs"/> computed by the statistics pass. Saves only x.
/// </summary>
internal sealed class BatchFunction : autograd.MultiTensorFunction<BatchFunction>
{
    /// <inheritdoc/>
    public override string Name => "UanBatchFused";

    /// <inheritdoc/>
    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var a = (BatchArgs)vars[6];
        int k = (int)((Tensor)vars[2]).shape[0];
        var m = MixtureKernel.Mixture.WithStatistics(k, x.shape[1], a.Mu, a.LogLambda, a.Var, a.Stats.Mean,
            a.Stats.Var, a.Eps, Values(vars[4] as Tensor), Values(vars[5] as Tensor));
        var y = empty(x.shape, x.dtype, x.device);
        Fused.Forward(x, y, m, false);
        ctx.set_materialize_grads(false);
        ctx.save_for_backward(new List<Tensor> { x });
        ctx.save_data("m", m);
        ctx.save_data("args", a);
        ctx.save_data("needs", vars.Take(6).Select(Fused.Needs).ToArray());
        return new List<Tensor> { y };
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
    {
        using var scope = NewDisposeScope();
        var x = ctx.get_saved_variables()[0];
        var m = (MixtureKernel.Mixture)ctx.get_data("m");
        var a = (BatchArgs)ctx.get_data("args");
        var needs = (bool[])ctx.get_data("needs");
        var g = Fused.Upstream(grads, x);
        int k = m.K;
        long c = m.C;

        // First pass: how the loss depends on each component's batch mean m_k and variance v_k.
        // dL/dm_k = −r_k Σ gy τ_k, dL/dv_k = −½ r_k/(v_k + eps) Σ gy τ_k (x − m_k); m_k and v_k are τ-weighted
        // averages, so τ_k reaches them with weight 1/W_k: α_k = (dL/dm_k)/W_k, β_k = (dL/dv_k)/W_k.
        var sums = Fused.OutputSums(x, g, m);
        var alpha = new double[k * c];
        var beta = new double[k * c];
        for (long ch = 0; ch < c; ch++)
            for (int j = 0; j < k; j++)
            {
                long kc = j * c + ch;
                double r = m.Scale[kc], sg = sums[ch * 2 * k + 2 * j], sgu = sums[ch * 2 * k + 2 * j + 1];
                double w = a.Stats.W[kc];
                alpha[kc] = -r * sg / w;
                beta[kc] = -0.5 * r / (a.Stats.Var[kc] + a.Eps) * sgu / w;
            }

        var gx = needs[0] ? empty(x.shape, x.dtype, x.device) : null;
        var res = Fused.Backward(x, g, gx, m, alpha, beta, a.Stats.Var, 0, sums);
        var gLogLambda = new double[k * c];
        var gMu = new double[k * c];
        var gVar = new double[k * c];
        var gW = new double[c];
        var gB = new double[c];
        for (long ch = 0; ch < c; ch++)
        {
            for (int j = 0; j < k; j++)
            {
                long kc = j * c + ch;
                double iv = 1 / m.Var[kc], d = res.D(j, ch);
                gMu[kc] = res.B(j, ch) * iv;
                gVar[kc] = 0.5 * (res.E(j, ch) * iv - d) * iv;
                gLogLambda[kc] = d - 0.5 * m.Scale[kc] * res.F(j, ch);
            }
            gW[ch] = res.GY(ch);
            gB[ch] = res.G(ch);
        }
        long[] kcShape = { k, c }, cShape = { c };
        return new List<Tensor>
        {
            needs[0] ? gx!.MoveToOuterDisposeScope() : null!,
            Fused.Grad(needs[1], gLogLambda, kcShape, x.dtype),
            Fused.Grad(needs[2], gMu, kcShape, x.dtype),
            Fused.Grad(needs[3], gVar, kcShape, x.dtype),
            Fused.Grad(needs[4], gW, cShape, x.dtype),
            Fused.Grad(needs[5], gB, cShape, x.dtype),
            null!,
        };
    }
}
