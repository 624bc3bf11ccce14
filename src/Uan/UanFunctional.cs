using TorchSharp;
using Uan.Kernels;
using static TorchSharp.torch;

namespace Uan;

/// <summary>
/// The UAN and Mixture Normalization math as pure functions on tensors (docs/modes.md). Modules hold state and call
/// these. Inputs have the channel on dim 1 ([N, C], [N, C, L], [N, C, H, W], [N, C, D, H, W]); mixture parameters
/// are [K, C]. Internally every [K, C] tensor is viewed as [K, 1, C, 1, ...] against the input viewed as
/// [1, N, C, ...], so the component axis is dim 0 of a [K, N, C, ...] tensor: memory is O(K·|x|), never K×K.
/// </summary>
public static class UanFunctional
{
    /// <summary>Statistics of one BatchStats / MixtureNorm training forward, for the caller's running buffers.</summary>
    public sealed record BatchMoments(Tensor Mean, Tensor Var, Tensor UnbiasedVar);

    /// <summary>Statistics of one ReferenceCompat forward, for the moving-average write into mu, rho, alpha.</summary>
    public sealed record ReferenceStats(Tensor OutputMean, Tensor OutputVar, Tensor MeanResponsibility);

    /// <summary>
    /// Paper mode: responsibilities and normalisation from the learned mixture only; batch independent.
    /// y = Σ_k τ_k · λ_k^(−1/2) · (x − μ_k) · (σ²_k)^(−1/2), σ² = softplus(rho) + eps, λ = softmax_k(alpha).
    /// </summary>
    public static Tensor Paper(Tensor x, Tensor mu, Tensor rho, Tensor alpha, double eps,
        Tensor? weight = null, Tensor? bias = null)
    {
        using var scope = NewDisposeScope();
        var (logLambda, variance) = MixtureFromParameters(rho, alpha, eps);
        // The fused kernel takes (μ, log λ, σ²); the cheap [K, C] softplus / log-softmax chain stays with autograd.
        if (UanKernels.CanFuse(x, mu, logLambda, variance, weight, bias))
            return Fused.Paper(x, mu, logLambda, variance, weight, bias, withLogZ: false)[0]
                .MoveToOuterDisposeScope();
        var tau = Responsibilities(x, logLambda, mu, variance, out _);
        var y = Combine(x, tau, logLambda, mu, variance, varianceEps: 0);
        return Affine(y, weight, bias).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Mean negative log-likelihood of x under the per-channel mixture (mu, rho, alpha), averaged over every
    /// element: the optional clustering term (an extension, off by default).
    /// </summary>
    public static Tensor NegativeLogLikelihood(Tensor x, Tensor mu, Tensor rho, Tensor alpha, double eps)
    {
        using var scope = NewDisposeScope();
        var (logLambda, variance) = MixtureFromParameters(rho, alpha, eps);
        // The fused Paper node also yields the mean log-likelihood; its y output goes unused (no gradient).
        if (UanKernels.CanFuse(x, mu, logLambda, variance))
            return (0.5 * Math.Log(2 * Math.PI) - Fused.Paper(x, mu, logLambda, variance, null, null, true)[1])
                .MoveToOuterDisposeScope();
        Responsibilities(x, logLambda, mu, variance, out var logZ);
        return (0.5 * Math.Log(2 * Math.PI) - logZ.mean()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Paper mode's forward together with the clustering term, sharing the responsibilities.
    /// </summary>
    public static (Tensor Output, Tensor NegativeLogLikelihood) PaperWithLikelihood(Tensor x, Tensor mu, Tensor rho,
        Tensor alpha, double eps, Tensor? weight = null, Tensor? bias = null)
    {
        using var scope = NewDisposeScope();
        var (logLambda, variance) = MixtureFromParameters(rho, alpha, eps);
        if (UanKernels.CanFuse(x, mu, logLambda, variance, weight, bias))
        {
            var outputs = Fused.Paper(x, mu, logLambda, variance, weight, bias, withLogZ: true);
            var fusedNll = 0.5 * Math.Log(2 * Math.PI) - outputs[1];
            return (outputs[0].MoveToOuterDisposeScope(), fusedNll.MoveToOuterDisposeScope());
        }
        var tau = Responsibilities(x, logLambda, mu, variance, out var logZ);
        var y = Affine(Combine(x, tau, logLambda, mu, variance, varianceEps: 0), weight, bias);
        var nll = 0.5 * Math.Log(2 * Math.PI) - logZ.mean();
        return (y.MoveToOuterDisposeScope(), nll.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// BatchStats mode in training: responsibilities from the learned mixture, each component normalised by its
    /// τ-weighted batch mean and variance. Returns the batch moments for the running buffers.
    /// </summary>
    public static (Tensor Output, BatchMoments Moments) BatchStatsTrain(Tensor x, Tensor mu, Tensor rho, Tensor alpha,
        double eps, Tensor? weight = null, Tensor? bias = null)
    {
        using var scope = NewDisposeScope();
        var (logLambda, variance) = MixtureFromParameters(rho, alpha, eps);
        var (y, moments) = MixtureBatchTransform(x, logLambda, mu, variance, eps, weight, bias);
        return (y.MoveToOuterDisposeScope(), MoveOut(moments));
    }

    /// <summary>BatchStats mode in eval: responsibilities from the learned mixture, running component statistics.</summary>
    public static Tensor BatchStatsEval(Tensor x, Tensor mu, Tensor rho, Tensor alpha, Tensor runningMean,
        Tensor runningVar, double eps, Tensor? weight = null, Tensor? bias = null)
    {
        using var scope = NewDisposeScope();
        var (logLambda, variance) = MixtureFromParameters(rho, alpha, eps);
        var y = MixtureRunningTransform(x, logLambda, mu, variance, runningMean, runningVar, eps, weight, bias);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The Mixture Normalization transform with a given mixture (log λ, μ, σ² as [K, C]) in training: τ from the
    /// mixture, each component's τ-weighted batch mean m_k and variance v_k (gradients flow through τ, m_k, v_k
    /// with respect to x), y = Σ_k τ_k λ_k^(−1/2) (x − m_k) / sqrt(v_k + eps), then the optional affine
    /// y·weight + bias.
    /// </summary>
    public static (Tensor Output, BatchMoments Moments) MixtureBatchTransform(Tensor x, Tensor logLambda,
        Tensor mixtureMean, Tensor mixtureVar, double eps, Tensor? weight = null, Tensor? bias = null)
    {
        using var scope = NewDisposeScope();
        if (UanKernels.CanFuse(x, logLambda, mixtureMean, mixtureVar, weight, bias)
            && Fused.Batch(x, logLambda, mixtureMean, mixtureVar, eps, weight, bias) is var (fy, fm))
            return (fy.MoveToOuterDisposeScope(), MoveOut(fm));
        var logits = LogComponentDensities(x, logLambda, mixtureMean, mixtureVar);
        var logTau = logits - logits.logsumexp(0, keepdim: true);
        var tau = logTau.exp();
        var xs = x.unsqueeze(0);
        var dims = ReductionDims((int)xs.dim());
        // m_k and v_k are ratios Σ τ·(…) / Σ τ, so any per-(k, c) factor cancels: weigh by τ / max τ, computed in
        // log space. A component whose τ underflows to 0 over the whole batch (far from every input) would give
        // s_k = 0 and m_k = 0/0 = NaN, and that NaN reaches every output through 0·NaN; with the shift the weights
        // always include a 1, so s_k > 0 and the moments are the (finite) limit. The shift is a constant for autograd.
        var shift = logTau.detach().amax(dims, keepdim: true);
        var wt = (logTau - shift).exp();
        var w = wt.sum(dims, keepdim: true);                            // s_k / max τ
        var m = (wt * xs).sum(dims, keepdim: true) / w;                  // m_k
        var centered = xs - m;
        var v = (wt * centered.square()).sum(dims, keepdim: true) / w;   // v_k (biased)
        var invStd = (v + eps).rsqrt();
        var y = Affine((tau * (-0.5 * View(logLambda, (int)x.dim())).exp() * centered * invStd).sum(dim: 0),
            weight, bias);

        // Reliability-weights Bessel factor V1²/(V1² − V2): n/(n−1) for K = 1, as torch's BatchNorm running_var.
        // (Scale invariant, so the shifted weights serve.)
        var w2 = wt.detach().square().sum(dims, keepdim: true);
        var w1 = w.detach();
        var denom = w1.square() - w2;
        var bessel = where(denom > 0, w1.square() / denom.clamp_min(1e-30), ones_like(denom));
        var mean = m.detach().reshape(m.shape[0], m.shape[2]);
        var var = v.detach().reshape(v.shape[0], v.shape[2]);
        var unbiased = (v.detach() * bessel).reshape(v.shape[0], v.shape[2]);
        return (y.MoveToOuterDisposeScope(),
            new BatchMoments(mean.MoveToOuterDisposeScope(), var.MoveToOuterDisposeScope(),
                unbiased.MoveToOuterDisposeScope()));
    }

    /// <summary>
    /// The Mixture Normalization transform in eval: τ from the mixture, given component statistics, then the
    /// optional affine y·weight + bias.
    /// </summary>
    public static Tensor MixtureRunningTransform(Tensor x, Tensor logLambda, Tensor mixtureMean, Tensor mixtureVar,
        Tensor componentMean, Tensor componentVar, double eps, Tensor? weight = null, Tensor? bias = null)
    {
        using var scope = NewDisposeScope();
        if (UanKernels.CanFuse(x, logLambda, mixtureMean, mixtureVar, componentMean, componentVar, weight, bias))
            return Fused.Running(x, logLambda, mixtureMean, mixtureVar, componentMean, componentVar, eps, weight,
                bias).MoveToOuterDisposeScope();
        var tau = Responsibilities(x, logLambda, mixtureMean, mixtureVar, out _);
        int d = (int)x.dim();
        var y = (tau * (-0.5 * View(logLambda, d)).exp() * (x.unsqueeze(0) - View(componentMean, d))
                 * (View(componentVar, d) + eps).rsqrt()).sum(dim: 0);
        return Affine(y, weight, bias).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// ReferenceCompat: the authors' TensorFlow layer as it computes (docs/modes.md), channel on dim 1.
    /// λ ≡ 1, Gaussian kernel without its constant, eps at each of its places, E_k and V_k as coded (per sample,
    /// mean over the spatial dims; element-wise for 2-D input). This does not normalise: for realistic batches
    /// E_k ≈ 0 and V_k ≈ 0, so y ≈ x · Σ_k τ_k / sqrt(eps(1 + eps)), a gain of about 31.6 at eps = 1e-3
    /// (docs/modes.md). Also returns the output statistics that the reference writes into its parameters (those
    /// of h_k, before the optional affine, which the reference does not have).
    /// </summary>
    public static (Tensor Output, ReferenceStats Stats) ReferenceCompat(Tensor x, Tensor mu, Tensor rho, double eps,
        Tensor? weight = null, Tensor? bias = null)
    {
        using var scope = NewDisposeScope();
        int d = (int)x.dim();
        var xs = x.unsqueeze(0);                                            // [1, N, C, ...]
        var variance = View(nn.functional.softplus(rho), d);               // no +eps here, as coded
        var logits = -0.5 * (xs - View(mu, d)).square() / (variance + eps);  // ℓ_k = log p_k
        // τ_k = p_k / (Σ_j p_j + eps), evaluated in log space: exp(ℓ_k − logaddexp(logsumexp_j ℓ_j, ln eps)).
        var logS = logits.logsumexp(0, keepdim: true);
        var logDen = logaddexp(logS, full_like(logS, Math.Log(eps)));
        var tau = (logits - logDen).exp();                                  // [K, N, C, ...]

        var all = ReductionDims((int)xs.dim());                                  // N and spatial, per k and channel
        var tauHat = tau / (tau.sum(all, keepdim: true) + eps);
        var tx = tauHat * xs;
        Tensor e, v;
        if (d > 2)
        {
            var spatial = Enumerable.Range(3, d - 2).Select(i => (long)i).ToArray();
            e = tx.mean(spatial, keepdim: true);
            v = (tauHat * tx.square()).mean(spatial, keepdim: true);
        }
        else
        {
            e = tx;                                   // TF reduce_mean over no axes is the identity
            v = tauHat * tx.square();
        }
        var h = tau / Math.Sqrt(1 + eps) * (xs - e) / (v + eps).sqrt();   // h_k
        var y = h.sum(dim: 0);

        var hd = h.detach();
        long k = mu.shape[0], c = mu.shape[1];
        var outMean = hd.mean(all).reshape(k, c);
        var outVar = hd.var(all, unbiased: false).reshape(k, c);
        var tauMean = tau.detach().reshape(k, -1).mean(new long[] { 1 });   // scalar per k, over N, C and space
        return (Affine(y, weight, bias).MoveToOuterDisposeScope(), new ReferenceStats(outMean.MoveToOuterDisposeScope(),
            outVar.MoveToOuterDisposeScope(), tauMean.MoveToOuterDisposeScope()));
    }

    /// <summary>
    /// Posterior responsibilities τ [K, N, C, ...] of a per-channel mixture, computed in log space
    /// (log-sum-exp), so no component underflows to a 0/0. <paramref name="logZ"/> is log Σ_k λ_k N(x|μ_k, σ²_k)
    /// without the ½ log 2π constant, shape [N, C, ...].
    /// </summary>
    public static Tensor Responsibilities(Tensor x, Tensor logLambda, Tensor mean, Tensor variance, out Tensor logZ)
    {
        var logits = LogComponentDensities(x, logLambda, mean, variance);
        logZ = logits.logsumexp(0, keepdim: false);
        return (logits - logZ.unsqueeze(0)).exp();
    }

    /// <summary>ℓ_k = log λ_k − ½ log σ²_k − (x − μ_k)² / (2σ²_k), as [K, N, C, ...].</summary>
    public static Tensor LogComponentDensities(Tensor x, Tensor logLambda, Tensor mean, Tensor variance)
    {
        int d = (int)x.dim();
        var v = View(variance, d);
        return View(logLambda, d) - 0.5 * v.log() - (x.unsqueeze(0) - View(mean, d)).square() / (2 * v);
    }

    /// <summary>log λ = log_softmax_k(alpha) and σ² = softplus(rho) + eps, both [K, C].</summary>
    public static (Tensor LogLambda, Tensor Variance) MixtureFromParameters(Tensor rho, Tensor alpha, double eps) =>
        (alpha.log_softmax(0), nn.functional.softplus(rho) + eps);

    /// <summary>Inverse of softplus, for initialising rho from a target variance.</summary>
    public static Tensor InverseSoftplus(Tensor y) =>
        // log(expm1(y)) overflows for large y; y + log(1 − exp(−y)) is the same and stable.
        y + (-(-y).exp()).log1p();

    /// <summary>Views a [K, C] tensor as [K, 1, C, 1, ...] against a [1, N, C, ...] view of a rank-d input.</summary>
    public static Tensor View(Tensor kc, int inputRank)
    {
        var shape = new long[inputRank + 1];
        Array.Fill(shape, 1L);
        shape[0] = kc.shape[0];
        shape[2] = kc.shape[1];
        return kc.view(shape);
    }

    static Tensor Combine(Tensor x, Tensor tau, Tensor logLambda, Tensor mean, Tensor variance, double varianceEps)
    {
        int d = (int)x.dim();
        var scale = (-0.5 * View(logLambda, d)).exp() * (View(variance, d) + varianceEps).rsqrt();
        return (tau * scale * (x.unsqueeze(0) - View(mean, d))).sum(dim: 0);
    }

    /// <summary>y·weight + bias with [C] weight and bias broadcast over dim 1; either may be null.</summary>
    internal static Tensor Affine(Tensor y, Tensor? weight, Tensor? bias)
    {
        if (weight is null && bias is null) return y;
        var shape = new long[y.dim()];
        Array.Fill(shape, 1L);
        shape[1] = y.shape[1];
        if (weight is not null) y = y * weight.view(shape);
        if (bias is not null) y = y + bias.view(shape);
        return y;
    }

    /// <summary>Dims of a [K, N, C, ...] tensor to reduce for per-component, per-channel statistics.</summary>
    static long[] ReductionDims(int rank) =>
        new long[] { 1 }.Concat(Enumerable.Range(3, rank - 3).Select(i => (long)i)).ToArray();

    static BatchMoments MoveOut(BatchMoments m) =>
        new(m.Mean.MoveToOuterDisposeScope(), m.Var.MoveToOuterDisposeScope(), m.UnbiasedVar.MoveToOuterDisposeScope());
}
