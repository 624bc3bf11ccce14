namespace Uan;

/// <summary>How <see cref="UnsupervisedAdaptiveNorm"/> computes its output (docs/modes.md).</summary>
public enum UanMode
{
    /// <summary>The paper's formula: the learned mixture normalises; batch independent, train = eval.</summary>
    Paper,
    /// <summary>Learned responsibilities, τ-weighted batch statistics per component, running statistics in eval.</summary>
    BatchStats,
    /// <summary>The authors' TensorFlow layer as coded; does not normalise (a ≈31.6 gain). For reproduction only.</summary>
    ReferenceCompat,
}

/// <summary>How the mixture parameters start.</summary>
public enum UanInit
{
    /// <summary>
    /// From the first training batch, per channel and from its finite values only: μ_k at evenly spaced quantiles,
    /// σ² = batch variance / K, λ uniform; |μ| and σ² clamped to <see cref="UnsupervisedAdaptiveNorm.MaxInitialValue"/>.
    /// A channel without a finite value keeps the placeholder (μ evenly spaced in [−1, 1], σ² = 1).
    /// </summary>
    Data,
    /// <summary>The reference code's: μ ~ U(−1, 1), rho ~ U(0.001, 0.01), λ from U(0.01, 0.99) normalised.</summary>
    Uniform,
}

/// <summary>Options of <see cref="UnsupervisedAdaptiveNorm"/>. Defaults are the paper's: K = 3, eps = 1e-3, no affine.</summary>
public sealed record UanOptions
{
    /// <summary>Number of mixture components K (≥ 1).</summary>
    public int Components { get; init; } = 3;
    /// <summary>Which computation the layer performs.</summary>
    public UanMode Mode { get; init; } = UanMode.Paper;
    /// <summary>Variance floor: σ² = softplus(rho) + Eps; in BatchStats also sqrt(v + Eps). Must be &gt; 0.</summary>
    public double Eps { get; init; } = 1e-3;
    /// <summary>
    /// Weight of a new batch in the running statistics (torch convention: running = (1 − m)·running + m·batch), in
    /// [0, 1]. ReferenceCompat uses it for its moving-average write (0.1 = the reference's Keras momentum 0.9).
    /// </summary>
    public double Momentum { get; init; } = 0.1;
    /// <summary>Adds a per-channel affine weight and bias after the normalisation (the paper has none).</summary>
    public bool Affine { get; init; } = false;
    /// <summary>
    /// How mu, rho and alpha start. Null means the mode's default: <see cref="UanInit.Data"/> for Paper and
    /// BatchStats, <see cref="UanInit.Uniform"/> (the reference's) for ReferenceCompat.
    /// </summary>
    public UanInit? Init { get; init; } = null;
    /// <summary>
    /// Extension, not in the paper: when &gt; 0 the layer records, in training, the mean negative log-likelihood
    /// of its input under its own mixture; the trainer adds this weight × that term to the loss.
    /// </summary>
    public double ClusterLossWeight { get; init; } = 0;
    /// <summary>
    /// ReferenceCompat only: also record the moving-average statistics in eval, as the reference notebooks did by
    /// forcing training=True (they are applied by <see cref="UnsupervisedAdaptiveNorm.ApplyReferenceUpdate"/>).
    /// </summary>
    public bool CompatUpdateInEval { get; init; } = false;

    /// <summary>The init actually used for <see cref="Mode"/>.</summary>
    public UanInit EffectiveInit => Init ?? (Mode == UanMode.ReferenceCompat ? UanInit.Uniform : UanInit.Data);
}
