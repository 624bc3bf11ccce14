using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Uan;

/// <summary>Options of <see cref="MixtureNorm"/>.</summary>
public sealed record MixtureNormOptions
{
    /// <summary>Number of mixture components K (≥ 1).</summary>
    public int Components { get; init; } = 3;
    /// <summary>Added to each component variance before the square root (as BatchNorm's eps). Must be &gt; 0.</summary>
    public double Eps { get; init; } = 1e-3;
    /// <summary>Weight of a new batch in the running mixture and statistics (torch convention), in [0, 1].</summary>
    public double Momentum { get; init; } = 0.1;
    /// <summary>EM iterations on each training batch (≥ 0), warm-started from the running mixture.</summary>
    public int EmIterations { get; init; } = 2;
    /// <summary>BatchNorm's per-channel affine γ, β after the normalisation.</summary>
    public bool Affine { get; init; } = true;
}

/// <summary>
/// Mixture Normalization (Kalayeh &amp; Shah, 2018) as in docs/modes.md: on each training batch a per-channel K-component
/// Gaussian mixture is fitted by EM (no gradient; k-means++ start on the first batch, then warm-started from the
/// running mixture); each value is normalised by every component's responsibility-weighted batch mean and variance
/// and the results are blended by the responsibilities, then BatchNorm's affine γ, β. Gradients flow through the
/// responsibilities and the weighted statistics with respect to the input. Eval uses the running mixture and the
/// running component statistics. With K = 1 this is BatchNorm.
/// <para>
/// A training batch with NaN or infinite values is refused with an <see cref="ArgumentException"/> (EM cannot fit a
/// mixture to them and would keep the NaN in its running mixture); in eval such values propagate as in BatchNorm. An
/// empty input is refused in both modes.
/// </para>
/// </summary>
public sealed class MixtureNorm : nn.Module<Tensor, Tensor>
{
    const string Layer = nameof(MixtureNorm);

    [ComponentName(Name = nameof(weight))] Parameter? _weight;
    [ComponentName(Name = nameof(bias))] Parameter? _bias;
    [ComponentName(Name = nameof(mixture_weight))] Tensor _mixWeight;
    [ComponentName(Name = nameof(mixture_mean))] Tensor _mixMean;
    [ComponentName(Name = nameof(mixture_var))] Tensor _mixVar;
    [ComponentName(Name = nameof(running_mean))] Tensor _runningMean;
    [ComponentName(Name = nameof(running_var))] Tensor _runningVar;
    [ComponentName(Name = nameof(initialized))] Tensor _initialized;

    /// <summary>Creates the layer for <paramref name="channels"/> channels.</summary>
    /// <exception cref="ArgumentException">channels &lt; 1, K &lt; 1, eps ≤ 0, momentum outside [0, 1], EM iterations &lt; 0.</exception>
    public MixtureNorm(long channels, MixtureNormOptions? options = null) : base(Layer)
    {
        Options = options ?? new MixtureNormOptions();
        NormArgs.Options(Layer, channels, Options.Components, Options.Eps, Options.Momentum);
        if (Options.EmIterations < 0)
            throw new ArgumentException($"{Layer}: EmIterations must be ≥ 0, got {Options.EmIterations}.",
                nameof(options));
        Channels = channels;
        int k = Options.Components;
        if (Options.Affine)
        {
            _weight = new Parameter(ones(channels));
            _bias = new Parameter(zeros(channels));
        }
        _mixWeight = full(k, channels, 1.0 / k);
        _mixMean = (k == 1 ? zeros(1) : linspace(-1, 1, k)).unsqueeze(1).expand(k, channels).contiguous();
        _mixVar = ones(k, channels);
        _runningMean = zeros(k, channels);
        _runningVar = ones(k, channels);
        _initialized = tensor(0L);
        RegisterComponents();
    }

    /// <summary>The options this layer was built with.</summary>
    public MixtureNormOptions Options { get; }

    /// <summary>Number of channels C.</summary>
    public long Channels { get; }

    /// <summary>Affine γ [C], or null without <see cref="MixtureNormOptions.Affine"/>.</summary>
    public Parameter? weight { get => _weight; private set => Replace(ref _weight, value, nameof(weight)); }

    /// <summary>Affine β [C], or null without <see cref="MixtureNormOptions.Affine"/>.</summary>
    public Parameter? bias { get => _bias; private set => Replace(ref _bias, value, nameof(bias)); }

    /// <summary>Running mixture weights λ [K, C] (EM warm start; responsibilities in eval).</summary>
    public Tensor mixture_weight { get => _mixWeight; private set => ReplaceBuffer(ref _mixWeight, value, nameof(mixture_weight)); }

    /// <summary>Running mixture means [K, C].</summary>
    public Tensor mixture_mean { get => _mixMean; private set => ReplaceBuffer(ref _mixMean, value, nameof(mixture_mean)); }

    /// <summary>Running mixture variances [K, C].</summary>
    public Tensor mixture_var { get => _mixVar; private set => ReplaceBuffer(ref _mixVar, value, nameof(mixture_var)); }

    /// <summary>Running responsibility-weighted component means [K, C] used in eval.</summary>
    public Tensor running_mean { get => _runningMean; private set => ReplaceBuffer(ref _runningMean, value, nameof(running_mean)); }

    /// <summary>Running responsibility-weighted component variances [K, C] (unbiased) used in eval.</summary>
    public Tensor running_var { get => _runningVar; private set => ReplaceBuffer(ref _runningVar, value, nameof(running_var)); }

    /// <summary>1 once the first training batch has seeded the mixture.</summary>
    public Tensor initialized { get => _initialized; private set => ReplaceBuffer(ref _initialized, value, nameof(initialized)); }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        NormArgs.Input(Layer, x, Channels);
        var o = Options;
        if (!training)
        {
            using var scope = NewDisposeScope();
            var y = UanFunctional.MixtureRunningTransform(x, _mixWeight.log(), _mixMean, _mixVar, _runningMean,
                _runningVar, o.Eps, _weight, _bias);
            return y.MoveToOuterDisposeScope();
        }

        using (var scope = NewDisposeScope())
        {
            GaussianMixture fitted;
            using (no_grad())
            {
                // EM would turn one NaN or inf into a NaN mixture for good (or stop inside libtorch's multinomial).
                if (!isfinite(x).all().item<bool>())
                    throw new ArgumentException(
                        $"{Layer}: the training input {NormArgs.Shape(x)} contains NaN or infinite values; the EM fit of " +
                        "the batch mixture needs finite values (in eval the layer passes them through).", nameof(x));
                bool first = _initialized.item<long>() == 0;
                using var start = first
                    ? MixtureEm.KMeansPlusPlus(MixtureEm.ToRows(x).to(_mixMean.dtype), o.Components)
                    : new GaussianMixture(_mixWeight.clone(), _mixMean.clone(), _mixVar.clone());
                // The fused EM reads x in place; otherwise EM runs on the transposed rows [C, N·spatial].
                fitted = x.dtype == _mixMean.dtype
                    ? MixtureEm.FitInput(x, start, o.EmIterations)
                    : MixtureEm.Fit(MixtureEm.ToRows(x).to(_mixMean.dtype), start, o.EmIterations);
                double m = first ? 1.0 : o.Momentum;      // the first fit replaces the placeholder mixture
                _mixWeight.mul_(1 - m).add_(fitted.Weights, m);
                _mixMean.mul_(1 - m).add_(fitted.Means, m);
                _mixVar.mul_(1 - m).add_(fitted.Variances, m);
                _initialized.fill_(1L);
            }
            var (y, moments) = UanFunctional.MixtureBatchTransform(x, fitted.Weights.to(x.dtype).log(),
                fitted.Means.to(x.dtype), fitted.Variances.to(x.dtype), o.Eps, _weight, _bias);
            using (no_grad())
            {
                _runningMean.mul_(1 - o.Momentum).add_(moments.Mean.to(_runningMean.dtype), o.Momentum);
                _runningVar.mul_(1 - o.Momentum).add_(moments.UnbiasedVar.to(_runningVar.dtype), o.Momentum);
            }
            return y.MoveToOuterDisposeScope();
        }
    }

    /// <summary>The running mixture as plain tensors (copies): λ, μ, σ², each [K, C].</summary>
    public GaussianMixture GetMixture() => new(_mixWeight.clone(), _mixMean.clone(), _mixVar.clone());

    void Replace(ref Parameter? field, Parameter? value, string name)
    {
        if (ReferenceEquals(field, value)) return;
        field?.Dispose();
        field = value?.DetachFromDisposeScope() as Parameter;
        ConditionallyRegisterParameter(name, field);
    }

    void ReplaceBuffer(ref Tensor field, Tensor value, string name)
    {
        if (ReferenceEquals(field, value)) return;
        field.Dispose();
        field = value.DetachFromDisposeScope();
        ConditionallyRegisterBuffer(name, field);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _weight?.Dispose(); _bias?.Dispose();
            _mixWeight.Dispose(); _mixMean.Dispose(); _mixVar.Dispose();
            _runningMean.Dispose(); _runningVar.Dispose(); _initialized.Dispose();
        }
        base.Dispose(disposing);
    }
}
