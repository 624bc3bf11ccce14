using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Uan.Lab.Models;

/// <summary>
/// DenseNet-BC for CIFAR as in the reference's <c>densenet_cifar100</c> (spec Part B §4.2): an optional input norm
/// (UAN in the paper), a 3×3 convolution to 2k channels, three dense blocks of L = (depth − 4) / 6 bottleneck layers
/// with growth k, transitions that halve the channels and the resolution, and a norm → ReLU → global-average-pool →
/// linear head (logits). Convolutions are bias-free; convolution and linear weights are glorot-uniform. The k×k
/// convolutions run through <see cref="OneDnnSafe.Conv2d"/>, whose CPU result is the plain convolution's.
/// </summary>
public sealed class DenseNet : nn.Module<Tensor, Tensor>
{
    readonly nn.Module<Tensor, Tensor> input_norm;
    readonly Conv2d conv0;
    readonly DenseBlock block1, block2, block3;
    readonly Transition trans1, trans2;
    readonly nn.Module<Tensor, Tensor> norm_final;
    readonly Linear fc;

    /// <summary>Builds DenseNet-<paramref name="depth"/>.</summary>
    /// <param name="depth">Network depth; (depth − 4) must be a positive multiple of 6 (40 → L = 6, 100 → L = 16).</param>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="numClasses">Number of classes (logits).</param>
    /// <param name="norm">Spec of every internal norm (see <see cref="Uan.Norms"/>).</param>
    /// <param name="inputNorm">Spec of a norm applied to the input before conv0 (the paper: <c>uan:k=10</c>), or null.</param>
    /// <param name="replicateChannelBug">
    /// True reproduces the reference code's channel bookkeeping, whose second transition compresses less than
    /// half (DenseNet-40 ends with 120 channels, DenseNet-100 with 315); false is standard BC compression 0.5
    /// (132 and 342).
    /// </param>
    /// <param name="growthRate">Growth k; the bottleneck has 4k channels and conv0 2k.</param>
    /// <param name="dropout">Dropout after each dense layer's 3×3 convolution.</param>
    /// <param name="name">Module name.</param>
    /// <exception cref="ArgumentException">An invalid depth, channel or class count, dropout or norm spec.</exception>
    public DenseNet(int depth, int inChannels, int numClasses, string norm = ShallowCnn.KerasBatchNorm,
        string? inputNorm = null, bool replicateChannelBug = false, int growthRate = 12, double dropout = 0.2,
        string name = "densenet") : base(name)
    {
        if (depth < 10 || (depth - 4) % 6 != 0)
            throw new ArgumentException(
                $"DenseNet: depth must be 6·L + 4 with L ≥ 1 (e.g. 40, 100), got {depth}.", nameof(depth));
        if (inChannels < 1)
            throw new ArgumentException($"DenseNet: inChannels must be ≥ 1, got {inChannels}.", nameof(inChannels));
        if (numClasses < 1)
            throw new ArgumentException($"DenseNet: numClasses must be ≥ 1, got {numClasses}.", nameof(numClasses));
        if (growthRate < 1)
            throw new ArgumentException($"DenseNet: growthRate must be ≥ 1, got {growthRate}.", nameof(growthRate));
        if (!(dropout >= 0 && dropout < 1))
            throw new ArgumentException($"DenseNet: dropout must be in [0, 1), got {dropout}.", nameof(dropout));

        Depth = depth;
        LayersPerBlock = (depth - 4) / 6;
        GrowthRate = growthRate;
        Norm = Norms.Parse(norm).ToString();
        InputNorm = inputNorm is null ? null : Norms.Parse(inputNorm).ToString();
        ReplicatesChannelBug = replicateChannelBug;

        long bottleneck = 4L * growthRate;
        input_norm = inputNorm is null ? nn.Identity() : Norms.Create(inputNorm, inChannels);
        long actual = 2L * growthRate;
        conv0 = nn.Conv2d(inChannels, actual, 3, padding: 1, bias: false);

        // The reference tracks the channel count separately from the tensors: its transition returns half of its
        // output width, so from the second block on the tracked count is too small, and the second transition's
        // width (tracked / 2) comes out below actual / 2. Keras infers the real input widths, so only the
        // transition outputs are affected.
        long tracked = actual;
        var stages = new List<long> { actual };
        DenseBlock Block()
        {
            var b = new DenseBlock(actual, LayersPerBlock, growthRate, bottleneck, dropout, norm);
            actual += LayersPerBlock * (long)growthRate;
            tracked += LayersPerBlock * (long)growthRate;
            stages.Add(actual);
            return b;
        }
        Transition Trans()
        {
            long output = replicateChannelBug ? tracked / 2 : actual / 2;
            var t = new Transition(actual, output, norm);
            actual = output;
            tracked = replicateChannelBug ? output / 2 : output;
            stages.Add(actual);
            return t;
        }

        block1 = Block();
        trans1 = Trans();
        block2 = Block();
        trans2 = Trans();
        block3 = Block();

        StageChannels = stages.AsReadOnly();
        FinalChannels = actual;
        norm_final = Norms.Create(norm, actual);
        fc = nn.Linear(actual, numClasses);
        RegisterComponents();
        KerasInit.GlorotUniform(this);
    }

    /// <summary>Network depth (40, 100, …).</summary>
    public int Depth { get; }

    /// <summary>Dense layers per block, L = (depth − 4) / 6.</summary>
    public int LayersPerBlock { get; }

    /// <summary>Growth rate k.</summary>
    public int GrowthRate { get; }

    /// <summary>The internal norm spec, canonical form.</summary>
    public string Norm { get; }

    /// <summary>The input norm spec, canonical form, or null when the input is not normalised.</summary>
    public string? InputNorm { get; }

    /// <summary>True when built with the reference code's channel bookkeeping.</summary>
    public bool ReplicatesChannelBug { get; }

    /// <summary>
    /// Channels after conv0, block 1, transition 1, block 2, transition 2 and block 3 (the rows of spec §4.2's
    /// table).
    /// </summary>
    public IReadOnlyList<long> StageChannels { get; }

    /// <summary>Channels entering the head (the last block's output).</summary>
    public long FinalChannels { get; }

    /// <summary>The input norm module (an identity when none was asked for).</summary>
    public nn.Module<Tensor, Tensor> InputNormModule => input_norm;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4)
            throw new ArgumentException($"DenseNet: expected input [N, C, H, W], got [{string.Join(", ", x.shape)}].",
                nameof(x));
        var h = OneDnnSafe.Conv2d(input_norm.call(x), conv0.weight, 1);
        h = trans1.call(block1.call(h));
        h = trans2.call(block2.call(h));
        h = F.relu(norm_final.call(block3.call(h)));
        return fc.call(h.mean([2, 3]));
    }

    /// <summary>L dense layers; each appends its growth-k output to the running concatenation.</summary>
    sealed class DenseBlock : nn.Module<Tensor, Tensor>
    {
        readonly ModuleList<DenseLayer> layers;

        public DenseBlock(long inChannels, int count, long growth, long bottleneck, double dropout, string norm)
            : base(nameof(DenseBlock))
        {
            layers = nn.ModuleList(Enumerable.Range(0, count)
                .Select(i => new DenseLayer(inChannels + i * growth, growth, bottleneck, dropout, norm)).ToArray());
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            foreach (var layer in layers) x = layer.call(x);
            return x;
        }
    }

    /// <summary>Norm → ReLU → 1×1 bottleneck → norm → ReLU → 3×3 → dropout, concatenated to its input.</summary>
    sealed class DenseLayer : nn.Module<Tensor, Tensor>
    {
        readonly nn.Module<Tensor, Tensor> norm1, norm2;
        readonly Conv2d conv1, conv2;
        readonly Dropout drop;

        public DenseLayer(long inChannels, long growth, long bottleneck, double dropout, string norm)
            : base(nameof(DenseLayer))
        {
            norm1 = Norms.Create(norm, inChannels);
            conv1 = nn.Conv2d(inChannels, bottleneck, 1, bias: false);
            norm2 = Norms.Create(norm, bottleneck);
            conv2 = nn.Conv2d(bottleneck, growth, 3, padding: 1, bias: false);
            drop = nn.Dropout(dropout);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var y = conv1.call(F.relu(norm1.call(x)));
            // Growth 12 is below oneDNN's channel block; see OneDnnSafe.
            y = drop.call(OneDnnSafe.Conv2d(F.relu(norm2.call(y)), conv2.weight, 1));
            return cat([x, y], 1);
        }
    }

    /// <summary>Norm → ReLU → 1×1 convolution → 2×2 average pool.</summary>
    sealed class Transition : nn.Module<Tensor, Tensor>
    {
        readonly nn.Module<Tensor, Tensor> norm;
        readonly Conv2d conv;

        public Transition(long inChannels, long outChannels, string normSpec) : base(nameof(Transition))
        {
            norm = Norms.Create(normSpec, inChannels);
            conv = nn.Conv2d(inChannels, outChannels, 1, bias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) =>
            F.avg_pool2d(conv.call(F.relu(norm.call(x))), [2, 2], [2, 2]);
    }
}
