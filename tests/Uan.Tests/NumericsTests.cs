using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Tests;

/// <summary>Spec A5: float32, extreme inputs and well-separated components give finite outputs and gradients.</summary>
public class NumericsTests
{
    public enum Scenario
    {
        /// <summary>x ~ 1e4 · N(0, 1): every input is thousands of σ from every component.</summary>
        HugeSpread,
        /// <summary>x ≈ 1e4 + small noise: all inputs on one side, far from every component.</summary>
        HugeOffset,
        /// <summary>x drawn near the components, which are 50 σ apart: the other responsibilities underflow.</summary>
        NearSeparatedComponents,
    }

    public static IEnumerable<object[]> Cases()
    {
        foreach (var mode in new[] { UanMode.Paper, UanMode.BatchStats })
            foreach (var scenario in Enum.GetValues<Scenario>())
                foreach (int rank in new[] { 2, 4 })
                    yield return new object[] { mode, scenario, rank };
    }

    static Tensor Input(Scenario scenario, long[] shape, Tensor centres)
    {
        switch (scenario)
        {
            case Scenario.HugeSpread:
                return randn(shape) * 1e4;
            case Scenario.HugeOffset:
                return randn(shape) * 3 + 1e4;
            default:
                // Each element sits within ±2 σ of a randomly chosen component of its channel.
                long k = centres.shape[0], c = centres.shape[1];
                var pick = randint(k, shape);
                var channel = arange(c).view(shape.Length == 2 ? new long[] { 1, c } : new long[] { 1, c, 1, 1 })
                    .expand(shape);
                var mean = centres[pick, channel];
                return mean + (rand(shape) * 4 - 2);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Float32_ExtremeInputs_GiveFiniteOutputsAndGradients(UanMode mode, Scenario scenario, int rank)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1234 + rank + 10 * (int)scenario);
        const int C = 3, K = 3;
        const double eps = 1e-3;
        var shape = rank == 2 ? new long[] { 32, C } : new long[] { 4, C, 5, 5 };
        using var layer = new UnsupervisedAdaptiveNorm(C, new UanOptions
        {
            Components = K, Mode = mode, Eps = eps, Affine = true, Init = UanInit.Uniform,
        });
        // Components 50 σ apart (σ² = 1), λ uneven.
        var centres = tensor(new float[] { -50, 0, 50 }).unsqueeze(1).expand(K, C).contiguous();
        using (no_grad())
        {
            layer.mu.copy_(centres);
            layer.rho.copy_(UanFunctional.InverseSoftplus(full(K, C, 1 - eps)));
            layer.alpha.copy_(tensor(new float[] { -2, 0, 1 }).unsqueeze(1).expand(K, C));
        }
        var x = Input(scenario, shape, centres).detach().requires_grad_(true);
        Assert.Equal(ScalarType.Float32, x.dtype);
        if (scenario != Scenario.NearSeparatedComponents)
            Assert.True(x.abs().max().item<float>() > 1e3);

        layer.train();
        var y = layer.forward(x);
        Assert.Equal(ScalarType.Float32, y.dtype);
        AssertFinite(y, "y");
        var g = randn(shape);
        y.backward(new[] { g });
        AssertFinite(x.grad!, "x.grad");
        foreach (var (name, param) in layer.named_parameters())
        {
            Assert.NotNull(param.grad);
            AssertFinite(param.grad!, name + ".grad");
        }
        // The input gradient is not identically zero: the layer did not simply go dead.
        Assert.True(x.grad!.abs().max().item<float>() > 0);

        if (mode == UanMode.BatchStats)
        {
            AssertFinite(layer.running_mean!, "running_mean");
            AssertFinite(layer.running_var!, "running_var");
            layer.eval();
            AssertFinite(layer.forward(x.detach()), "eval y");
        }
    }

    static void AssertFinite(Tensor t, string what)
    {
        var values = t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();
        int bad = values.Count(v => !double.IsFinite(v));
        Assert.True(bad == 0, $"{what}: {bad} of {values.Length} values are not finite.");
    }
}
