using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Uan.Lab.Models;

/// <summary>
/// The shallow CNN of the BN / MN / UAN comparison (spec Part B §4.1), NCHW: four 5×5 'same' convolutions
/// (64, 128, 128, 256) each followed by a norm and ReLU, TF-'same' 3×3/2 max pooling after the first three,
/// a 4×4/1 'valid' average pool, flatten and a linear classifier (logits). Only conv2's norm is the one under
/// study; the other three are BatchNorm with Keras' ε and momentum. Weights are glorot-uniform, biases zero.
/// </summary>
public sealed class ShallowCnn : nn.Module<Tensor, Tensor>
{
    /// <summary>Keras' BatchNorm defaults (momentum 0.99, ε 1e-3) in torch's convention.</summary>
    public const string KerasBatchNorm = "bn:eps=1e-3,momentum=0.01";

    const long PoolKernel = 3, PoolStride = 2, AvgPoolKernel = 4;

    // Field names are the state-dict names.
    readonly Conv2d conv1, conv2, conv3, conv4;
    readonly nn.Module<Tensor, Tensor> bn1, norm2, bn3, bn4;
    readonly Linear fc;

    /// <summary>Builds the network for square <paramref name="imageSize"/>×<paramref name="imageSize"/> inputs.</summary>
    /// <param name="inChannels">Input channels (3 for CIFAR / Tiny ImageNet).</param>
    /// <param name="numClasses">Number of classes (logits).</param>
    /// <param name="imageSize">Input height and width; fixes the classifier's input features (72 → 9216).</param>
    /// <param name="norm">Norm spec for conv2 (see <see cref="Uan.Norms"/>), e.g. <c>uan:k=3</c>.</param>
    /// <param name="name">Module name.</param>
    /// <param name="otherNorm">Norm spec of conv1, conv3 and conv4 (the paper: Keras BatchNorm, <see cref="KerasBatchNorm"/>).</param>
    /// <exception cref="ArgumentException">
    /// Non-positive channels or classes, an invalid norm spec, or an image smaller than <see cref="MinImageSize"/>.
    /// </exception>
    public ShallowCnn(int inChannels, int numClasses, int imageSize, string norm = KerasBatchNorm,
        string name = "shallow_cnn", string otherNorm = KerasBatchNorm) : base(name)
    {
        if (inChannels < 1)
            throw new ArgumentException($"ShallowCnn: inChannels must be ≥ 1, got {inChannels}.", nameof(inChannels));
        if (numClasses < 1)
            throw new ArgumentException($"ShallowCnn: numClasses must be ≥ 1, got {numClasses}.", nameof(numClasses));
        var grid = FinalGrid(imageSize);
        if (grid < 1)
            throw new ArgumentException(
                $"ShallowCnn: imageSize must be at least {MinImageSize} (three stride-2 pools, then a 4×4 'valid' " +
                $"average pool), got {imageSize}.", nameof(imageSize));

        InChannels = inChannels;
        NumClasses = numClasses;
        ImageSize = imageSize;
        Norm = Norms.Parse(norm).ToString();
        FeatureCount = 256 * grid * grid;

        conv1 = nn.Conv2d(inChannels, 64, 5, padding: 2);
        bn1 = Norms.Create(otherNorm, 64);
        conv2 = nn.Conv2d(64, 128, 5, padding: 2);
        norm2 = Norms.Create(norm, 128);
        conv3 = nn.Conv2d(128, 128, 5, padding: 2);
        bn3 = Norms.Create(otherNorm, 128);
        conv4 = nn.Conv2d(128, 256, 5, padding: 2);
        bn4 = Norms.Create(otherNorm, 256);
        fc = nn.Linear(FeatureCount, numClasses);
        RegisterComponents();
        KerasInit.GlorotUniform(this);
    }

    /// <summary>
    /// The smallest image size the network accepts: the grid after three 'same' pools (ceil halvings) must still
    /// hold one 4×4 window.
    /// </summary>
    public static int MinImageSize { get; } = Enumerable.Range(1, 64).First(s => FinalGrid(s) >= 1);

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>Input height and width the classifier was sized for.</summary>
    public int ImageSize { get; }

    /// <summary>The conv2 norm spec, canonical form.</summary>
    public string Norm { get; }

    /// <summary>Length of <see cref="Features"/>' rows: 256 × g × g for the final grid g (9216 at 72×72).</summary>
    public long FeatureCount { get; }

    /// <summary>The norm under study (after conv2).</summary>
    public nn.Module<Tensor, Tensor> Conv2Norm => norm2;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => fc.call(Features(x));

    /// <summary>conv2's output before its norm, [N, 128, H/2, W/2], for activation-distribution plots.</summary>
    public Tensor Conv2PreNorm(Tensor x)
    {
        CheckInput(x);
        var h = TfSame.MaxPool2d(F.relu(bn1.call(conv1.call(x))), PoolKernel, PoolStride);
        return conv2.call(h);
    }

    /// <summary>The flattened features the classifier sees, [N, <see cref="FeatureCount"/>] (e.g. for t-SNE).</summary>
    public Tensor Features(Tensor x)
    {
        var h = TfSame.MaxPool2d(F.relu(norm2.call(Conv2PreNorm(x))), PoolKernel, PoolStride);
        h = TfSame.MaxPool2d(F.relu(bn3.call(conv3.call(h))), PoolKernel, PoolStride);
        h = F.relu(bn4.call(conv4.call(h)));
        return F.avg_pool2d(h, [AvgPoolKernel, AvgPoolKernel], [1, 1]).flatten(1);
    }

    void CheckInput(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != InChannels || x.shape[2] != ImageSize || x.shape[3] != ImageSize)
            throw new ArgumentException(
                $"ShallowCnn: expected input [N, {InChannels}, {ImageSize}, {ImageSize}], got [{string.Join(", ", x.shape)}].",
                nameof(x));
    }

    static long FinalGrid(long imageSize)
    {
        if (imageSize < 1) return 0;
        long s = imageSize;
        for (int i = 0; i < 3; i++) s = TfSame.OutputSize(s, PoolStride);
        return s - AvgPoolKernel + 1;
    }
}
