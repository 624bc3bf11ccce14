using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Uan;

/// <summary>
/// Unsupervised Adaptive Normalization (Faye et al., 2024): each channel is a K-component Gaussian mixture whose
/// means (mu), variance pre-activations (rho, σ² = softplus(rho) + eps) and mixing logits (alpha, λ = softmax)
/// are learned by backpropagation; every activation is normalised by each component and the results are blended by
/// its posterior responsibilities. Input [N, C, ...] with the channel on dim 1, like TorchSharp's BatchNorm.
/// See <see cref="UanMode"/> for the three computations; the math lives in <see cref="UanFunctional"/>.
/// </summary>
public sealed class UnsupervisedAdaptiveNorm : nn.Module<Tensor, Tensor>
{
    const string Layer = nameof(UnsupervisedAdaptiveNorm);

    [ComponentName(Name = nameof(mu))] Parameter _mu;
    [ComponentName(Name = nameof(rho))] Parameter _rho;
    [ComponentName(Name = nameof(alpha))] Parameter _alpha;
    [ComponentName(Name = nameof(weight))] Parameter? _weight;
    [ComponentName(Name = nameof(bias))] Parameter? _bias;
    [ComponentName(Name = nameof(running_mean))] Tensor? _runningMean;
    [ComponentName(Name = nameof(running_var))] Tensor? _runningVar;
    [ComponentName(Name = nameof(initialized))] Tensor _initialized;

    UanFunctional.ReferenceStats? _pending;

    /// <summary>Creates the layer for <paramref name="channels"/> channels.</summary>
    /// <exception cref="ArgumentException">channels &lt; 1, K &lt; 1, eps ≤ 0 or momentum outside [0, 1].</exception>
    public UnsupervisedAdaptiveNorm(long channels, UanOptions? options = null) : base(Layer)
    {
        Options = options ?? new UanOptions();
        NormArgs.Options(Layer, channels, Options.Components, Options.Eps, Options.Momentum);
        if (!(Options.ClusterLossWeight >= 0) || double.IsInfinity(Options.ClusterLossWeight))
            throw new ArgumentException($"{Layer}: ClusterLossWeight must be a finite number ≥ 0, got {Options.ClusterLossWeight}.",
                nameof(options));
        Channels = channels;
        int k = Options.Components;

        using (no_grad())
        {
            Tensor mu0, rho0, alpha0;
            if (Options.EffectiveInit == UanInit.Uniform)
            {
                mu0 = rand(k, channels) * 2 - 1;
                rho0 = rand(k, channels) * 0.009 + 0.001;
                var p = rand(k, 1) * 0.98 + 0.01;
                alpha0 = (p / p.sum()).log().expand(k, channels).contiguous();
            }
            else
            {
                // Placeholder until the first training batch: a standard-normal-shaped mixture.
                mu0 = (k == 1 ? zeros(1) : linspace(-1, 1, k)).unsqueeze(1).expand(k, channels).contiguous();
                rho0 = UanFunctional.InverseSoftplus(full(k, channels, Math.Max(1 - Options.Eps, 1e-3)));
                alpha0 = zeros(k, channels);
            }
            _mu = new Parameter(mu0);
            _rho = new Parameter(rho0);
            _alpha = new Parameter(alpha0);
            if (Options.Affine)
            {
                _weight = new Parameter(ones(channels));
                _bias = new Parameter(zeros(channels));
            }
            if (Options.Mode == UanMode.BatchStats)
            {
                _runningMean = zeros(k, channels);
                _runningVar = ones(k, channels);
            }
            _initialized = tensor(Options.EffectiveInit == UanInit.Data ? 0L : 1L);
        }
        RegisterComponents();
    }

    /// <summary>The options this layer was built with.</summary>
    public UanOptions Options { get; }

    /// <summary>Number of channels C.</summary>
    public long Channels { get; }

    /// <summary>Component means μ, [K, C].</summary>
    public Parameter mu { get => _mu; private set => Replace(ref _mu!, value, nameof(mu)); }

    /// <summary>Variance pre-activations, σ² = softplus(rho) + eps, [K, C].</summary>
    public Parameter rho { get => _rho; private set => Replace(ref _rho!, value, nameof(rho)); }

    /// <summary>Mixing logits, λ = softmax over K of alpha, [K, C].</summary>
    public Parameter alpha { get => _alpha; private set => Replace(ref _alpha!, value, nameof(alpha)); }

    /// <summary>Per-channel affine weight [C], or null without <see cref="UanOptions.Affine"/>.</summary>
    public Parameter? weight { get => _weight; private set => Replace(ref _weight, value, nameof(weight)); }

    /// <summary>Per-channel affine bias [C], or null without <see cref="UanOptions.Affine"/>.</summary>
    public Parameter? bias { get => _bias; private set => Replace(ref _bias, value, nameof(bias)); }

    /// <summary>BatchStats mode: running τ-weighted component means [K, C] used in eval; null otherwise.</summary>
    public Tensor? running_mean { get => _runningMean; private set => ReplaceBuffer(ref _runningMean, value, nameof(running_mean)); }

    /// <summary>BatchStats mode: running τ-weighted component variances [K, C] used in eval; null otherwise.</summary>
    public Tensor? running_var { get => _runningVar; private set => ReplaceBuffer(ref _runningVar, value, nameof(running_var)); }

    /// <summary>1 once the parameters are initialised (Data init has run, or was not asked for); saved with the state.</summary>
    public Tensor initialized { get => _initialized; private set => ReplaceBuffer(ref _initialized!, value, nameof(initialized)); }

    /// <summary>
    /// The clustering term of the last training forward when <see cref="UanOptions.ClusterLossWeight"/> &gt; 0: the
    /// mean negative log-likelihood of the input under the layer's mixture (a scalar with its graph). The trainer
    /// adds ClusterLossWeight × this to the loss. It belongs to the dispose scope the forward ran in.
    /// </summary>
    public Tensor? ClusterLoss { get; private set; }

    /// <summary>True when a ReferenceCompat forward has recorded statistics not yet applied.</summary>
    public bool HasPendingReferenceUpdate => _pending is not null;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        NormArgs.Input(Layer, x, Channels);
        if (training && Options.EffectiveInit == UanInit.Data && _initialized.item<long>() == 0)
            InitializeFromData(x);

        var o = Options;
        ClusterLoss = null;
        bool wantNll = training && o.ClusterLossWeight > 0 && o.Mode != UanMode.ReferenceCompat;
        switch (o.Mode)
        {
            case UanMode.Paper:
                if (!wantNll) return UanFunctional.Paper(x, _mu, _rho, _alpha, o.Eps, _weight, _bias);
                var (y, nll) = UanFunctional.PaperWithLikelihood(x, _mu, _rho, _alpha, o.Eps, _weight, _bias);
                ClusterLoss = nll;
                return y;

            case UanMode.BatchStats:
                if (!training)
                    return UanFunctional.BatchStatsEval(x, _mu, _rho, _alpha, _runningMean!, _runningVar!, o.Eps,
                        _weight, _bias);
                var (yb, moments) = UanFunctional.BatchStatsTrain(x, _mu, _rho, _alpha, o.Eps, _weight, _bias);
                using (no_grad())
                {
                    _runningMean!.mul_(1 - o.Momentum).add_(moments.Mean.to(_runningMean.dtype), o.Momentum);
                    _runningVar!.mul_(1 - o.Momentum).add_(moments.UnbiasedVar.to(_runningVar.dtype), o.Momentum);
                }
                moments.Mean.Dispose(); moments.Var.Dispose(); moments.UnbiasedVar.Dispose();
                if (wantNll) ClusterLoss = UanFunctional.NegativeLogLikelihood(x, _mu, _rho, _alpha, o.Eps);
                return yb;

            default:
                var (yr, stats) = UanFunctional.ReferenceCompat(x, _mu, _rho, o.Eps, _weight, _bias);
                if (training || o.CompatUpdateInEval)
                {
                    DisposePending();
                    _pending = new UanFunctional.ReferenceStats(stats.OutputMean.DetachFromDisposeScope(),
                        stats.OutputVar.DetachFromDisposeScope(), stats.MeanResponsibility.DetachFromDisposeScope());
                }
                return yr;
        }
    }

    /// <summary>
    /// ReferenceCompat only: applies the reference code's moving-average write of the last forward's statistics,
    /// mu[k] ← (1 − m)·mu[k] + m·mean(h_k), rho[k] ← (1 − m)·rho[k] + m·var(h_k) (into the pre-softplus
    /// parameter, as coded), alpha[k] ← (1 − m)·alpha[k] + m·mean(τ_k), with m = <see cref="UanOptions.Momentum"/>.
    /// Call it after backward and before the optimizer step: the gradient is then taken at the pre-update values and
    /// applied to the updated ones, which is TensorFlow's order in the reference. Returns false when nothing is
    /// pending (other modes, or no forward since the last call).
    /// </summary>
    public bool ApplyReferenceUpdate()
    {
        if (_pending is null) return false;
        double m = Options.Momentum;
        using (no_grad())
        {
            _mu.mul_(1 - m).add_(_pending.OutputMean.to(_mu.dtype), m);
            _rho.mul_(1 - m).add_(_pending.OutputVar.to(_rho.dtype), m);
            _alpha.mul_(1 - m).add_(_pending.MeanResponsibility.to(_alpha.dtype).unsqueeze(1), m);
        }
        DisposePending();
        return true;
    }

    /// <summary>The layer's mixture as plain tensors (detached): λ, μ, σ², each [K, C].</summary>
    public (Tensor Weights, Tensor Means, Tensor Variances) GetMixture()
    {
        using var _ = no_grad();
        if (Options.Mode == UanMode.ReferenceCompat)
            return (ones_like(_alpha), _mu.detach().clone(), nn.functional.softplus(_rho));
        var (logLambda, variance) = UanFunctional.MixtureFromParameters(_rho, _alpha, Options.Eps);
        return (logLambda.exp(), _mu.detach().clone(), variance);
    }

    /// <summary>
    /// Bound of the data initialisation: |μ_k| and σ²_k are clamped to at most this, so that values such as ±1e30 in
    /// the first batch (whose variance overflows even float64 once squared) still give finite float32 parameters.
    /// </summary>
    public const double MaxInitialValue = 1e30;

    /// <summary>Smallest σ² − eps the data initialisation writes (a constant channel would otherwise give rho = −∞).</summary>
    public const double MinInitialExcessVariance = 1e-6;

    // Per channel from its finite values only (NaN and ±inf are left out, so one bad element cannot poison the
    // parameters for good): μ_k at the k-th of K evenly spaced quantiles, σ²_k = variance / K, λ uniform. In double,
    // on the CPU: it runs once. A channel without a finite value keeps the placeholder mixture (μ evenly spaced in
    // [−1, 1], σ² = 1), which is what a layer that has seen no data uses.
    void InitializeFromData(Tensor x)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int k = Options.Components;
        double eps = Options.Eps;
        var rows = x.detach().transpose(0, 1).reshape(Channels, -1);
        var mu = new double[k * Channels];
        var target = new double[k * Channels];
        for (long ch = 0; ch < Channels; ch++)
        {
            double[] values;
            // One channel at a time in double: the whole batch in double would be twice its own size again. Through
            // the raw bytes: TensorAccessor's ToArray goes element by element, seconds for a large batch.
            using (NewDisposeScope())
                values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(
                    rows[ch].cpu().to(float64).contiguous().bytes).ToArray();
            int count = 0;
            foreach (double v in values)
                if (double.IsFinite(v)) values[count++] = v;
            Span<double> finite = values.AsSpan(0, count);
            double excess;
            if (finite.Length == 0)
            {
                for (int j = 0; j < k; j++) mu[j * Channels + ch] = k == 1 ? 0 : -1 + 2.0 * j / (k - 1);
                excess = Math.Max(1 - eps, 1e-3);                  // the constructor's placeholder
            }
            else
            {
                finite.Sort();
                int m = finite.Length;
                for (int j = 0; j < k; j++)
                {
                    double q = finite[(int)Math.Round((j + 0.5) / k * (m - 1))];
                    mu[j * Channels + ch] = Math.Clamp(q, -MaxInitialValue, MaxInitialValue);
                }
                // Scaled by the largest magnitude so that neither the sum nor the squares overflow; the product
                // with scale² may reach +inf, which the clamp below turns into MaxInitialValue.
                double scale = Math.Max(Math.Abs(finite[0]), Math.Abs(finite[m - 1]));
                double variance = 0;
                if (scale > 0)
                {
                    double mean = 0;
                    foreach (double v in finite) mean += v / scale;
                    mean /= m;
                    double sq = 0;
                    foreach (double v in finite) sq += (v / scale - mean) * (v / scale - mean);
                    variance = sq / m * scale * scale;   // in this order: 0 · scale stays 0, never 0 · inf
                }
                excess = Math.Clamp(variance / k - eps, MinInitialExcessVariance, MaxInitialValue);
            }
            for (int j = 0; j < k; j++) target[j * Channels + ch] = excess;
        }
        _mu.copy_(tensor(mu, new[] { (long)k, Channels }));
        _rho.copy_(UanFunctional.InverseSoftplus(tensor(target, new[] { (long)k, Channels })));
        _alpha.zero_();
        _initialized.fill_(1L);
    }

    void DisposePending()
    {
        if (_pending is null) return;
        _pending.OutputMean.Dispose();
        _pending.OutputVar.Dispose();
        _pending.MeanResponsibility.Dispose();
        _pending = null;
    }

    void Replace(ref Parameter? field, Parameter? value, string name)
    {
        if (ReferenceEquals(field, value)) return;
        field?.Dispose();
        field = value?.DetachFromDisposeScope() as Parameter;
        ConditionallyRegisterParameter(name, field);
    }

    void ReplaceBuffer(ref Tensor? field, Tensor? value, string name)
    {
        if (ReferenceEquals(field, value)) return;
        field?.Dispose();
        field = value?.DetachFromDisposeScope();
        ConditionallyRegisterBuffer(name, field);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            DisposePending();
            _mu.Dispose(); _rho.Dispose(); _alpha.Dispose();
            _weight?.Dispose(); _bias?.Dispose();
            _runningMean?.Dispose(); _runningVar?.Dispose(); _initialized.Dispose();
        }
        base.Dispose(disposing);
    }
}
