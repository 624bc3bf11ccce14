using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Uan.Lab.Adaptation;

/// <summary>The parts of one AdaMatch loss evaluation; the tensors live in the caller's dispose scope.</summary>
/// <param name="Total">L = L_src + μ(t)·L_tgt (scalar, differentiable).</param>
/// <param name="Source">L_src on the interpolated source logits (scalar): CE(y, z_src_w) + CE(y, z_src_s), or half that
/// in the official variant.</param>
/// <param name="Target">L_tgt = mean(mask · CE(ỹ, z_tgt_s)) (scalar), with ỹ's argmax in the official variant.</param>
/// <param name="Mask">Relative-confidence mask over the target rows, float 0/1 [B_t].</param>
/// <param name="PseudoLabels">ỹ, the aligned pseudo-labels of the weak target images [B_t, classes] (no gradient).</param>
/// <param name="SourceWeakLogits">Interpolated logits of the weak source images [B_s, classes] (for training accuracy).</param>
public sealed record AdaMatchLoss(Tensor Total, Tensor Source, Tensor Target, Tensor Mask, Tensor PseudoLabels,
    Tensor SourceWeakLogits);

/// <summary>
/// AdaMatch (Berthelot et al. 2022, "AdaMatch: a unified approach to semi-supervised learning and domain
/// adaptation") as pure functions on logits and probabilities, so each piece can be checked by hand.
/// <see cref="ComputeOfficial"/> is the official method (google-research/adamatch, domain_adaptation/adamatch.py);
/// <see cref="Compute"/> is the Keras example's, and with <c>compat</c> it reproduces the two deviations of the reference notebook's
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
    /// ε added to both sides of every alignment ratio, so that a class whose mean probability underflows to 0 gives
    /// a finite ratio (google-research/adamatch, domain_adaptation/adamatch.py line 81: <c>(1e-6 + p_labeled) /
    /// (1e-6 + p_unlabeled)</c>); the Keras and compat variants use it too.
    /// </summary>
    public const double AlignEpsilon = 1e-6;

    /// <summary>
    /// Distribution alignment of the Keras and compat variants, on the weak target probabilities [B_t, C].
    /// Keras: ỹ = normalise₁(p_tgt · (ε + mean_batch(p_src)) / (ε + mean_batch(p_tgt))), the means per class over the
    /// batch rows, every row of ỹ a distribution. Compat: the reference's ratio of the means over all elements (= 1 for
    /// softmax rows; ε on both sides as well) and L2 row normalisation, i.e. ỹ = p_tgt / ‖p_tgt‖₂ per row.
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
            var ratio = (sourceWeakProbs.mean() + AlignEpsilon) / (targetWeakProbs.mean() + AlignEpsilon);
            var scaled = targetWeakProbs * ratio;
            // tf.math.l2_normalize: x · rsqrt(max(Σx², 1e-12)).
            var squares = scaled.square().sum(dim: 1, keepdim: true);
            return (scaled * squares.clamp_min(1e-12).rsqrt()).MoveToOuterDisposeScope();
        }
        return AlignToAverages(targetWeakProbs, sourceWeakProbs.mean(dimensions: [0]), targetWeakProbs.mean(dimensions: [0]))
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// ỹ = normalise₁(p_tgt · (ε + <paramref name="sourceAverage"/>) / (ε + <paramref name="targetAverage"/>)) per row
    /// of <paramref name="targetWeakProbs"/> [B_t, C], the averages [C]. The official variant passes its moving
    /// averages (google-research/adamatch, domain_adaptation/adamatch.py lines 78–82), the Keras variant the batch
    /// means.
    /// </summary>
    public static Tensor AlignToAverages(Tensor targetWeakProbs, Tensor sourceAverage, Tensor targetAverage)
    {
        CheckProbs(targetWeakProbs, "targetWeakProbs");
        long c = targetWeakProbs.shape[1];
        if (sourceAverage.dim() != 1 || targetAverage.dim() != 1 || sourceAverage.shape[0] != c || targetAverage.shape[0] != c)
            throw new ArgumentException($"AlignToAverages: averages must be [{c}], got [{string.Join(", ", sourceAverage.shape)}] " +
                                        $"and [{string.Join(", ", targetAverage.shape)}].");
        using var scope = NewDisposeScope();
        var ratio = (sourceAverage + AlignEpsilon) / (targetAverage + AlignEpsilon);
        var aligned = targetWeakProbs * ratio.unsqueeze(0);
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
    /// The four logit blocks both losses read: the source rows interpolated between <paramref name="from"/> and
    /// <paramref name="to"/> (<see cref="InterpolateLogits(Tensor, Tensor, Tensor)"/>, with λ given or drawn from
    /// <paramref name="generator"/>) and split into weak and strong halves, and the target rows of
    /// <paramref name="combined"/> ([2B_s + 2B_t, C], rows src_w, src_s, tgt_w, tgt_s) split the same way.
    /// </summary>
    static (Tensor SourceWeak, Tensor SourceStrong, Tensor TargetWeak, Tensor TargetStrong) SplitLogits(
        Tensor combined, Tensor from, Tensor to, long bs, long bt, Tensor? lambda, Generator? generator)
    {
        var source = lambda is null ? InterpolateLogits(from, to, generator) : InterpolateLogits(from, to, lambda);
        return (source.narrow(0, 0, bs), source.narrow(0, bs, bs),
                combined.narrow(0, 2 * bs, bt), combined.narrow(0, 2 * bs + bt, bt));
    }

    /// <summary>
    /// One AdaMatch loss of the Keras and compat variants from their two forward passes.
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
        var (bs, bt) = CheckRows(trainLogits, sourceEvalLogits, labels);
        var (sourceWeak, sourceStrong, targetWeak, targetStrong) =
            SplitLogits(trainLogits, trainLogits.narrow(0, 0, 2 * bs), sourceEvalLogits, bs, bt, lambda, generator);

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

    /// <summary>
    /// One loss of the official AdaMatch (google-research/adamatch, domain_adaptation/adamatch.py,
    /// <c>loss_function</c>, lines 60–91), without the weight decay term (<see cref="WeightDecayPenalty"/>), which the
    /// trainer adds:
    /// z_src = z_all,src + λ·(z_bn,src − z_all,src) (line 68; λ ~ U(0, 1) per element);
    /// threshold = τ · mean_rows max softmax(z_src,weak) (lines 73–74);
    /// p̄_src ← EMA of mean_rows softmax(z_src,weak), p̄_tgt ← mean of the last batches' mean_rows softmax(z_tgt,weak)
    /// (lines 79–80, <see cref="ClassDistributionTracker"/>, updated before use);
    /// ỹ = normalise₁(softmax(z_tgt,weak) · (ε + p̄_src) / (ε + p̄_tgt)) (lines 78, 81–82), mask = max ỹ ≥ threshold
    /// (line 83);
    /// L_src = ½·(CE(y, z_src,weak) + CE(y, z_src,strong)) (lines 85–86);
    /// L_tgt = mean(mask · CE(argmax ỹ, z_tgt,strong)) (lines 87–88, hard labels);
    /// L = L_src + μ(t)·L_tgt (line 91).
    /// </summary>
    /// <param name="combinedLogits">Train-mode logits of concat[src_w, src_s, tgt_w, tgt_s], [2B_s + 2B_t, C] (line 66).</param>
    /// <param name="sourceOnlyLogits">Train-mode logits of concat[src_w, src_s] alone, [2B_s, C] (line 63).</param>
    /// <param name="labels">Source labels, int64 [B_s].</param>
    /// <param name="warmup">μ(t).</param>
    /// <param name="tracker">The moving class distributions; updated by this call.</param>
    /// <param name="tau">Relative confidence factor τ.</param>
    /// <param name="lambda">λ, [2B_s, C]; drawn from <paramref name="generator"/> when null.</param>
    /// <param name="generator">Generator for λ (the global one when null).</param>
    public static AdaMatchLoss ComputeOfficial(Tensor combinedLogits, Tensor sourceOnlyLogits, Tensor labels, double warmup,
        ClassDistributionTracker tracker, double tau = DefaultTau, Tensor? lambda = null, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(tracker);
        var (bs, bt) = CheckRows(combinedLogits, sourceOnlyLogits, labels);
        var (sourceWeak, sourceStrong, targetWeak, targetStrong) =
            SplitLogits(combinedLogits, sourceOnlyLogits, combinedLogits.narrow(0, 0, 2 * bs), bs, bt, lambda, generator);

        Tensor pseudo, mask;
        using (no_grad())
        {
            var pSource = F.softmax(sourceWeak.detach(), 1);
            var pTarget = F.softmax(targetWeak.detach(), 1);
            var threshold = tau * pSource.max(dim: 1).values.mean();
            var (sourceAverage, targetAverage) = tracker.Update(pSource.mean(dimensions: [0]), pTarget.mean(dimensions: [0]));
            pseudo = AlignToAverages(pTarget, sourceAverage, targetAverage);
            mask = pseudo.max(dim: 1).values.ge(threshold).to(pseudo.dtype);
        }
        var sourceLoss = 0.5 * (F.cross_entropy(sourceWeak, labels) + F.cross_entropy(sourceStrong, labels));
        var hard = pseudo.argmax(1);
        var targetLoss = (mask * F.cross_entropy(targetStrong, hard, reduction: nn.Reduction.None)).mean();
        var total = sourceLoss + warmup * targetLoss;
        return new AdaMatchLoss(total, sourceLoss, targetLoss, mask, pseudo, sourceWeak);
    }

    /// <summary>Weight decay coefficient of the official AdaMatch (domain_adaptation/adamatch.py line 159, flag <c>wd</c>).</summary>
    public const double OfficialWeightDecay = 0.001;

    /// <summary>
    /// ½·Σ‖w‖² over <paramref name="weights"/> (google-research/adamatch, domain_adaptation/adamatch.py line 89: the
    /// variables whose names end in <c>.w</c>, i.e. the kernels of convolutions and dense layers, not biases or norm
    /// parameters); the official loss adds <see cref="OfficialWeightDecay"/> times it (line 91), so the decay goes
    /// through the optimiser's gradient as an L2 term.
    /// </summary>
    public static Tensor WeightDecayPenalty(IEnumerable<Tensor> weights)
    {
        Tensor? sum = null;
        foreach (var w in weights)
        {
            var term = w.square().sum();
            sum = sum is null ? term : sum + term;
        }
        return sum is null ? tensor(0f) : 0.5 * sum;
    }

    /// <summary>The kernels of every convolution and dense layer of <paramref name="model"/> (what the official weight decay covers).</summary>
    public static IReadOnlyList<Tensor> DecayedWeights(nn.Module model) =>
        model.modules().Select(m => m switch
        {
            TorchSharp.Modules.Conv2d c => (Tensor)c.weight!,
            TorchSharp.Modules.Conv1d c => c.weight!,
            TorchSharp.Modules.Linear l => l.weight!,
            _ => null,
        }).Where(w => w is not null).Select(w => w!).ToList();

    static (long Bs, long Bt) CheckRows(Tensor allLogits, Tensor sourceLogits, Tensor labels)
    {
        if (allLogits.dim() != 2 || sourceLogits.dim() != 2 || labels.dim() != 1)
            throw new ArgumentException("AdaMatch: expected logits [N, C] and labels [B_s].");
        long bs = labels.shape[0], totalSource = 2 * bs;
        long targetRows = allLogits.shape[0] - totalSource;
        if (sourceLogits.shape[0] != totalSource || targetRows <= 0 || targetRows % 2 != 0)
            throw new ArgumentException(
                $"AdaMatch: {bs} labels need source logits of 2·{bs} rows and combined logits of 2·{bs} + 2·B_t rows; got " +
                $"[{string.Join(", ", sourceLogits.shape)}] and [{string.Join(", ", allLogits.shape)}].");
        return (bs, targetRows / 2);
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
