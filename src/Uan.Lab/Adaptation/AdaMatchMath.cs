using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Uan.Lab.Adaptation;

/// <summary>The parts of one AdaMatch loss evaluation; the tensors live in the caller's dispose scope.</summary>
/// <param name="Total">L = L_src + μ(t)·L_tgt (scalar, differentiable).</param>
/// <param name="Source">L_src = CE(y, z_src_w) + CE(y, z_src_s) on the interpolated source logits (scalar).</param>
/// <param name="Target">L_tgt = mean(mask · CE(ỹ, z_tgt_s)) (scalar).</param>
/// <param name="Mask">Relative-confidence mask over the target rows, float 0/1 [B_t].</param>
/// <param name="PseudoLabels">ỹ, the aligned pseudo-labels of the weak target images [B_t, classes] (no gradient).</param>
/// <param name="SourceWeakLogits">Interpolated logits of the weak source images [B_s, classes] (for training accuracy).</param>
public sealed record AdaMatchLoss(Tensor Total, Tensor Source, Tensor Target, Tensor Mask, Tensor PseudoLabels,
    Tensor SourceWeakLogits);

/// <summary>
/// AdaMatch (Berthelot et al. 2022, "AdaMatch: a unified approach to semi-supervised learning and domain
/// adaptation") as pure functions on logits and probabilities, so each piece can be checked by hand. The default
/// path is the method as published; <c>compat</c> reproduces the two deviations of the reference notebook's
/// distribution alignment (spec Part B §4.3 step 4, §5.1 item 8): its ratio of means is taken over all elements, which
/// makes it exactly 1, and the pseudo-labels are L2- rather than L1-normalised (and never renormalised before the
/// cross-entropy). Everything else is the same in both paths.
/// </summary>
public static class AdaMatchMath
{
    /// <summary>The relative confidence factor τ of the paper and the reference (0.9).</summary>
    public const double DefaultTau = 0.9;

    /// <summary>
    /// Random logit interpolation: λ·<paramref name="trainLogits"/> + (1 − λ)·<paramref name="evalLogits"/> with
    /// λ ~ U(0, 1) drawn independently per sample and class from <paramref name="generator"/> (the global generator
    /// when null).
    /// </summary>
    public static Tensor InterpolateLogits(Tensor trainLogits, Tensor evalLogits, Generator? generator = null)
    {
        CheckSameShape(trainLogits, evalLogits, "InterpolateLogits");
        using var lambda = rand(trainLogits.shape, trainLogits.dtype, trainLogits.device, generator: generator);
        return InterpolateLogits(trainLogits, evalLogits, lambda);
    }

    /// <summary>Random logit interpolation with a given λ of the logits' shape.</summary>
    public static Tensor InterpolateLogits(Tensor trainLogits, Tensor evalLogits, Tensor lambda)
    {
        CheckSameShape(trainLogits, evalLogits, "InterpolateLogits");
        CheckSameShape(trainLogits, lambda, "InterpolateLogits (lambda)");
        return lambda * trainLogits + (1 - lambda) * evalLogits;
    }

    /// <summary>
    /// Distribution alignment of the weak target probabilities [B_t, C] toward the source's class marginal.
    /// Published: ỹ = normalise₁(p_tgt · mean_batch(p_src) / mean_batch(p_tgt)), the means per class over the batch
    /// rows, every row of ỹ a distribution. Compat: the reference's ratio of the means over all elements (= 1 for
    /// softmax rows) and L2 row normalisation, i.e. ỹ = p_tgt / ‖p_tgt‖₂ per row.
    /// </summary>
    public static Tensor AlignDistribution(Tensor sourceWeakProbs, Tensor targetWeakProbs, bool compat = false)
    {
        CheckProbs(sourceWeakProbs, "sourceWeakProbs");
        CheckProbs(targetWeakProbs, "targetWeakProbs");
        if (sourceWeakProbs.shape[1] != targetWeakProbs.shape[1])
            throw new ArgumentException(
                $"AlignDistribution: {sourceWeakProbs.shape[1]} source classes but {targetWeakProbs.shape[1]} target classes.");
        using var scope = NewDisposeScope();
        if (compat)
        {
            var ratio = sourceWeakProbs.mean() / targetWeakProbs.mean();
            var scaled = targetWeakProbs * ratio;
            // tf.math.l2_normalize: x · rsqrt(max(Σx², 1e-12)).
            var squares = scaled.square().sum(dim: 1, keepdim: true);
            return (scaled * squares.clamp_min(1e-12).rsqrt()).MoveToOuterDisposeScope();
        }
        var perClass = sourceWeakProbs.mean(dimensions: [0]) / targetWeakProbs.mean(dimensions: [0]);
        var aligned = targetWeakProbs * perClass.unsqueeze(0);
        return (aligned / aligned.sum(dim: 1, keepdim: true)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Relative confidence threshold: row i of <paramref name="pseudoLabels"/> is kept when max_c ỹ_ic ≥ τ · (mean
    /// over the source rows of max_c p_src_w). Returns a float 0/1 mask [B_t].
    /// </summary>
    public static Tensor RelativeConfidenceMask(Tensor sourceWeakProbs, Tensor pseudoLabels, double tau = DefaultTau)
    {
        CheckProbs(sourceWeakProbs, "sourceWeakProbs");
        CheckProbs(pseudoLabels, "pseudoLabels");
        if (!(tau >= 0 && tau <= 1)) throw new ArgumentOutOfRangeException(nameof(tau), tau, "must lie in [0, 1]");
        using var scope = NewDisposeScope();
        var threshold = tau * sourceWeakProbs.max(dim: 1).values.mean();
        return pseudoLabels.max(dim: 1).values.ge(threshold).to(pseudoLabels.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Warm-up weight of the target loss, μ(t) = ½ − cos(min(π, 2πt/T)) / 2: 0 at t = 0, 1 from t = T/2 on.</summary>
    public static double WarmupWeight(long step, long totalSteps)
    {
        if (totalSteps <= 0) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "must be positive");
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "must be non-negative");
        return 0.5 - Math.Cos(Math.Min(Math.PI, 2 * Math.PI * step / totalSteps)) / 2;
    }

    /// <summary>
    /// Keras' <c>CosineDecay(initial, decaySteps, alpha)</c>: initial · ((1 − α) · ½(1 + cos(π·min(t, T)/T)) + α),
    /// so the rate falls from <paramref name="initial"/> to α·initial at t = T and stays there.
    /// </summary>
    public static double CosineDecay(long step, double initial, long decaySteps, double alpha)
    {
        if (decaySteps <= 0) throw new ArgumentOutOfRangeException(nameof(decaySteps), decaySteps, "must be positive");
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "must be non-negative");
        double progress = Math.Min(step, decaySteps) / (double)decaySteps;
        return initial * ((1 - alpha) * 0.5 * (1 + Math.Cos(Math.PI * progress)) + alpha);
    }

    /// <summary>Per-row cross-entropy −Σ_c targets_c · log softmax(logits)_c, [N]; targets are used as given.</summary>
    public static Tensor SoftCrossEntropy(Tensor targets, Tensor logits)
    {
        CheckSameShape(targets, logits, "SoftCrossEntropy");
        return -(targets * F.log_softmax(logits, 1)).sum(dim: 1);
    }

    /// <summary>
    /// One AdaMatch loss from the two forward passes.
    /// </summary>
    /// <param name="trainLogits">Logits of concat[src_w, src_s, tgt_w, tgt_s] in train mode, [2B_s + 2B_t, C].</param>
    /// <param name="sourceEvalLogits">Logits of concat[src_w, src_s] in eval mode, [2B_s, C].</param>
    /// <param name="labels">Source labels, int64 [B_s] (the same for weak and strong).</param>
    /// <param name="warmup">μ(t), the weight of the target loss.</param>
    /// <param name="tau">Relative confidence factor τ.</param>
    /// <param name="compat">Reference-notebook alignment (see the class remarks).</param>
    /// <param name="lambda">λ of the logit interpolation, [2B_s, C]; drawn from <paramref name="generator"/> when null.</param>
    /// <param name="generator">Generator for λ (the global one when null).</param>
    public static AdaMatchLoss Compute(Tensor trainLogits, Tensor sourceEvalLogits, Tensor labels, double warmup,
        double tau = DefaultTau, bool compat = false, Tensor? lambda = null, Generator? generator = null)
    {
        if (trainLogits.dim() != 2 || sourceEvalLogits.dim() != 2 || labels.dim() != 1)
            throw new ArgumentException("AdaMatch: expected logits [N, C] and labels [B_s].");
        long bs = labels.shape[0], totalSource = 2 * bs;
        long targetRows = trainLogits.shape[0] - totalSource;
        if (sourceEvalLogits.shape[0] != totalSource || targetRows <= 0 || targetRows % 2 != 0)
            throw new ArgumentException(
                $"AdaMatch: {bs} labels need eval logits of 2·{bs} rows and train logits of 2·{bs} + 2·B_t rows; got " +
                $"[{string.Join(", ", sourceEvalLogits.shape)}] and [{string.Join(", ", trainLogits.shape)}].");
        long bt = targetRows / 2;

        var sourceTrain = trainLogits.narrow(0, 0, totalSource);
        var source = lambda is null
            ? InterpolateLogits(sourceTrain, sourceEvalLogits, generator)
            : InterpolateLogits(sourceTrain, sourceEvalLogits, lambda);
        var sourceWeak = source.narrow(0, 0, bs);
        var sourceStrong = source.narrow(0, bs, bs);
        var targetWeak = trainLogits.narrow(0, totalSource, bt);
        var targetStrong = trainLogits.narrow(0, totalSource + bt, bt);

        Tensor pseudo, mask;
        using (no_grad())
        {
            var pSource = F.softmax(sourceWeak.detach(), 1);
            var pTarget = F.softmax(targetWeak.detach(), 1);
            pseudo = AlignDistribution(pSource, pTarget, compat);
            mask = RelativeConfidenceMask(pSource, pseudo, tau);
        }
        var sourceLoss = F.cross_entropy(sourceWeak, labels) + F.cross_entropy(sourceStrong, labels);
        var targetLoss = (mask * SoftCrossEntropy(pseudo, targetStrong)).mean();
        var total = sourceLoss + warmup * targetLoss;
        return new AdaMatchLoss(total, sourceLoss, targetLoss, mask, pseudo, sourceWeak);
    }

    static void CheckSameShape(Tensor a, Tensor b, string what)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new ArgumentException(
                $"{what}: shapes differ, [{string.Join(", ", a.shape)}] vs [{string.Join(", ", b.shape)}].");
    }

    static void CheckProbs(Tensor p, string name)
    {
        if (p.dim() != 2 || p.shape[0] < 1)
            throw new ArgumentException($"{name}: expected probabilities [N ≥ 1, C], got [{string.Join(", ", p.shape)}].", name);
    }
}
