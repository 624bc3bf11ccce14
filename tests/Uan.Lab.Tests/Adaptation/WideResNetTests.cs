using TorchSharp;
using TorchSharp.Modules;
using Uan.Lab.Models;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Adaptation;

public class WideResNetTests
{
    [Theory]
    [InlineData(16, 2, 32, 128)]
    [InlineData(28, 2, 32, 128)]
    [InlineData(10, 1, 28, 64)]   // odd grid after the first stride: 28 → 14 → 7
    public void Shapes(int depth, int widen, int size, long features)
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        using var model = new WideResNet(depth, widen);
        Assert.Equal((depth - 4) / 6, model.BlocksPerStage);
        Assert.Equal(features, model.FinalChannels);
        var x = rand(2, 3, size, size) * 255;
        Assert.Equal(new long[] { 2, 10 }, model.call(x).shape);
        Assert.Equal(new long[] { 2, features }, model.Features(x).shape);
    }

    [Fact]
    public void Wrn28x2ParameterCountMatchesHandCount()
    {
        // Per block: norm1 (2·in) + conv3×3 in→out + norm2 (2·out) + conv3×3 out→out + 1×1 projection when the width changes.
        static long Block(long i, long o) => 2 * i + 9 * i * o + 2 * o + 9 * o * o + (i != o ? i * o : 0);
        long expected = 9 * 3 * 16                                  // conv0
                        + Block(16, 32) + 3 * Block(32, 32)          // stage 1, stride 1
                        + Block(32, 64) + 3 * Block(64, 64)          // stage 2, stride 2
                        + Block(64, 128) + 3 * Block(128, 128)       // stage 3, stride 2
                        + 2 * 128                                    // final BatchNorm
                        + 128 * 10 + 10;                             // classifier
        Assert.Equal(1_467_610, expected);
        using var model = new WideResNet(28, 2, norm: "bn");
        Assert.Equal(expected, ModelFactory.CountParameters(model));
        // UAN K=2 on the 3 input channels adds mu, rho, alpha of shape [2, 3].
        using var withUan = new WideResNet(28, 2, norm: "bn", inputNorm: "uan:k=2");
        Assert.Equal(expected + 3 * 2 * 3, ModelFactory.CountParameters(withUan));
    }

    [Theory]
    [InlineData("bn", null)]
    [InlineData("uan:k=2", null)]
    [InlineData("mn:k=2", null)]
    [InlineData("bn", "uan:k=2")]
    public void ForwardBackwardGivesFiniteGradientsEverywhere(string norm, string? inputNorm)
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var model = new WideResNet(10, 1, norm: norm, inputNorm: inputNorm);
        model.train();
        var x = rand(4, 3, 16, 16) * 255;
        var loss = nn.functional.cross_entropy(model.call(x), tensor(new long[] { 0, 1, 2, 3 }));
        Assert.True(double.IsFinite(loss.item<float>()));
        loss.backward();
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.NotNull(p.grad);
            Assert.True(double.IsFinite(p.grad!.abs().sum().item<float>()), $"{name}: non-finite gradient");
        }
        Assert.True(model.named_parameters().Single(p => p.name == "conv0.weight").parameter.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void ConvolutionsAreBiasFreeAndKerasHeNormal()
    {
        using var model = new WideResNet(16, 2);
        var convs = model.modules().OfType<Conv2d>().ToList();
        Assert.All(convs, c => Assert.Null(c.bias));
        // The largest 3×3 layer (128 → 128): std √(2 / 1152), values within the ±2σ' truncation of the Keras form.
        var w = convs.Last(c => c.weight.shape[1] == 128 && c.weight.shape[2] == 3).weight;
        double target = Math.Sqrt(2.0 / (128 * 9));
        Assert.InRange(w.std().item<float>(), 0.95 * target, 1.05 * target);
        Assert.True(w.abs().max().item<float>() <= 2 * target / KerasInit.TruncatedStdFactor + 1e-6);
    }

    [Fact]
    public void InputIsScaledBy255WithoutAnInputNorm()
    {
        using var scope = NewDisposeScope();
        using var a = new WideResNet(10, 1);
        using var b = new WideResNet(10, 1, inputScale: 1);
        // Same weights by copy, not by reseeding torch's global generator, which tests running alongside also draw from.
        b.load_state_dict(a.state_dict());
        a.eval();
        b.eval();
        var x = rand(2, 3, 16, 16) * 255;
        Assert.Equal(1.0 / 255, a.InputScale, 12);
        Assert.True(a.call(x).allclose(b.call(x / 255), rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void FactoryBuildsWideResNetsByName()
    {
        using var model = ModelFactory.Create("WRN-16-2", 3, 10, 32, "bn");
        var wrn = Assert.IsType<WideResNet>(model);
        Assert.Equal((16, 2), (wrn.Depth, wrn.Widen));
        Assert.Equal(1, wrn.InputScale);
        Assert.Equal((28, 2), ModelFactory.ParseWideResNet("wrn_28_2"));
        Assert.Null(ModelFactory.ParseWideResNet("densenet40"));
        Assert.Throws<ArgumentException>(() => ModelFactory.Create("wrn-17-2", 3, 10, 32, "bn"));
    }
}
