using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Uan.Lab.Models;

/// <summary>
/// Wide ResNet WRN-depth-k as in the AdaMatch experiment (spec Part B §4.3, the Keras AdaMatch example): a 3×3
/// convolution to 16 channels, three stages of n = (depth − 4) / 6 pre-activation blocks of widths 16k, 32k, 64k with
/// strides 1, 2, 2, then norm → ReLU → global average pool → linear (logits). A block is norm-ReLU-conv3×3(stride)-
/// norm-ReLU-conv3×3 plus a shortcut that is the identity, or a strided 1×1 convolution of the norm-ReLU'd input when
/// the width changes. Convolutions are bias-free and he_normal (Keras' truncated form); the classifier is
/// glorot-uniform with a zero bias. Strided convolutions use TF 'same' padding (extra row and column at the
/// bottom and right), so the sampling grid is the reference's.
/// <para>
/// Input: raw pixels on the 0–255 scale. With an input norm (the paper: <c>uan:k=2</c>) the pixels go straight into
/// it; without one the network multiplies them by <see cref="InputScale"/>, by default 1/255 as the Keras example's
/// <c>Rescaling(1/255)</c> (1 when the data pipeline already standardises, as <see cref="ModelFactory"/> builds it).
/// </para>
/// </summary>
public sealed class WideResNet : nn.Module<Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor> input_norm;
    readonly Conv2d conv0;
    readonly ModuleList<Block> blocks;
    readonly nn.Module<Tensor, Tensor> norm_final;
    readonly Linear fc;

    /// <summary>Builds WRN-<paramref name="depth"/>-<paramref name="widen"/>.</summary>
    /// <param name="depth">Depth; (depth − 4) must be a positive multiple of 6 (16 → 2 blocks per stage, 28 → 4).</param>
    /// <param name="widen">Widening factor k (stage widths 16k, 32k, 64k).</param>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="numClasses">Number of classes (logits).</param>
    /// <param name="norm">Spec of every internal norm (see <see cref="Uan.Norms"/>).</param>
    /// <param name="inputNorm">Spec of a norm on the raw 0–255 input (<see cref="InputNorms"/>: any norm spec, or
    /// <c>std</c> for a fixed per-channel standardisation whose statistics the caller sets), or null to scale the input
    /// by 1/255.</param>
    /// <param name="inputScale">Factor applied to the input when there is no input norm (1/255 for raw pixels).</param>
    /// <param name="name">Module name.</param>
    /// <exception cref="ArgumentException">An invalid depth, width, channel or class count, or norm spec.</exception>
    public WideResNet(int depth = 28, int widen = 2, int inChannels = 3, int numClasses = 10,
        string norm = ShallowCnn.KerasBatchNorm, string? inputNorm = null, double inputScale = 1.0 / 255, string name = "wrn") : base(name)
    {
        if (depth < 10 || (depth - 4) % 6 != 0)
            throw new ArgumentException($"WideResNet: depth must be 6·n + 4 with n ≥ 1 (e.g. 16, 28), got {depth}.", nameof(depth));
        if (widen < 1)
            throw new ArgumentException($"WideResNet: widen must be ≥ 1, got {widen}.", nameof(widen));
        if (inChannels < 1)
            throw new ArgumentException($"WideResNet: inChannels must be ≥ 1, got {inChannels}.", nameof(inChannels));
        if (!(inputScale > 0) || !double.IsFinite(inputScale))
            throw new ArgumentException($"WideResNet: inputScale must be positive, got {inputScale}.", nameof(inputScale));
        if (numClasses < 1)
            throw new ArgumentException($"WideResNet: numClasses must be ≥ 1, got {numClasses}.", nameof(numClasses));

        Depth = depth;
        Widen = widen;
        BlocksPerStage = (depth - 4) / 6;
        InChannels = inChannels;
        NumClasses = numClasses;
        Norm = Norms.Parse(norm).ToString();
        InputNorm = inputNorm is null ? null : InputNorms.Parse(inputNorm);
        InputScale = inputNorm is null ? inputScale : 1;

        input_norm = inputNorm is null ? nn.Identity() : InputNorms.Create(inputNorm, inChannels);
        conv0 = nn.Conv2d(inChannels, 16, 3, padding: 1, bias: false);
        var list = new List<Block>();
        long width = 16;
        foreach (var (stageWidth, stride) in new[] { (16L * widen, 1L), (32L * widen, 2L), (64L * widen, 2L) })
        {
            for (int i = 0; i < BlocksPerStage; i++)
            {
                list.Add(new Block(width, stageWidth, i == 0 ? stride : 1, norm, $"block{list.Count + 1}"));
                width = stageWidth;
            }
        }
        blocks = nn.ModuleList(list.ToArray());
        FinalChannels = width;
        norm_final = Norms.Create(norm, width);
        fc = nn.Linear(width, numClasses);
        RegisterComponents();
        KerasInit.GlorotUniform(this);
        KerasInit.HeNormal(this, convolutionsOnly: true);
    }

    /// <summary>Depth (16, 28, ...).</summary>
    public int Depth { get; }

    /// <summary>Widening factor k.</summary>
    public int Widen { get; }

    /// <summary>Blocks per stage, n = (depth − 4) / 6.</summary>
    public int BlocksPerStage { get; }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>The internal norm spec, canonical form.</summary>
    public string Norm { get; }

    /// <summary>The input norm spec, canonical form, or null when the input is scaled by 1/255 instead.</summary>
    public string? InputNorm { get; }

    /// <summary>Factor applied to the input before conv0 (1 when an input norm is used).</summary>
    public double InputScale { get; }

    /// <summary>Channels entering the head (64k).</summary>
    public long FinalChannels { get; }

    /// <summary>The input norm module (an identity when none was asked for).</summary>
    public nn.Module<Tensor, Tensor> InputNormModule => input_norm;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => fc.call(Features(x));

    /// <summary>The pooled features the classifier sees, [N, <see cref="FinalChannels"/>].</summary>
    public Tensor Features(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != InChannels)
            throw new ArgumentException(
                $"WideResNet: expected input [N, {InChannels}, H, W], got [{string.Join(", ", x.shape)}].", nameof(x));
        var h = InputNorm is null ? (InputScale == 1 ? x : x * InputScale) : input_norm.call(x);
        h = conv0.call(h);
        foreach (var block in blocks) h = block.call(h);
        h = F.relu(norm_final.call(h));
        return h.mean([2, 3]);
    }

    /// <summary>One pre-activation basic block.</summary>
    sealed class Block : nn.Module<Tensor, Tensor>
    {
        readonly nn.Module<Tensor, Tensor> norm1, norm2;
        readonly Conv2d conv1, conv2;
        readonly Conv2d? shortcut;
        readonly long stride;

        public Block(long inChannels, long outChannels, long stride, string norm, string name) : base(name)
        {
            this.stride = stride;
            norm1 = Norms.Create(norm, inChannels);
            // Strided: padding is added in forward, TF style (bottom/right), so the conv itself pads nothing.
            conv1 = nn.Conv2d(inChannels, outChannels, 3, stride: stride, padding: stride == 1 ? 1 : 0, bias: false);
            norm2 = Norms.Create(norm, outChannels);
            conv2 = nn.Conv2d(outChannels, outChannels, 3, padding: 1, bias: false);
            shortcut = inChannels == outChannels && stride == 1
                ? null
                : nn.Conv2d(inChannels, outChannels, 1, stride: stride, bias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var a = F.relu(norm1.call(x));
            var h = a;
            if (stride != 1)
            {
                var (top, bottom) = TfSame.Padding(h.shape[2], 3, stride);
                var (left, right) = TfSame.Padding(h.shape[3], 3, stride);
                h = F.pad(h, [left, right, top, bottom]);
            }
            h = conv1.call(h);
            h = conv2.call(F.relu(norm2.call(h)));
            // The reference takes the projection from the activated input when the width changes, and adds the raw
            // input otherwise.
            return h + (shortcut is null ? x : shortcut.call(a));
        }
    }
}
