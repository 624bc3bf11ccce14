using TorchSharp;
using TorchSharp.Modules;
using Uan.Lab.Diagnostics;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Diagnostics;

// The probe must restore torch's global generator, and a test running alongside would move it: run alone.
[Collection(nameof(Uan.Lab.Tests.Training.GlobalRngCollection))]
public class GradientProbeTests
{
    private static Sequential SmallNet(string norm) => nn.Sequential(
        ("conv", nn.Conv2d(2, 4, 3, padding: 1)),
        ("norm", Norms.Create(norm, 4)),
        ("relu", nn.ReLU()),
        ("pool", nn.AdaptiveAvgPool2d(new long[] { 2, 2 })),
        ("flat", nn.Flatten()),
        ("bn", nn.BatchNorm1d(16)),
        ("fc", nn.Linear(16, 3)));

    private static Dictionary<string, Tensor> Copy(nn.Module model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    [Theory]
    [InlineData("bn")]
    [InlineData("uan:k=3")]                    // Data init not yet run: the probe's forward would run it
    [InlineData("uan:k=3,mode=batchstats")]
    [InlineData("uan:k=2,mode=compat")]         // writes its moving averages into mu/rho/alpha
    [InlineData("mn:k=3")]
    public void LeavesStateGradsAndModesExactlyAsTheyWere(string norm)
    {
        manual_seed(3);
        var model = SmallNet(norm);
        var x = randn(8, 2, 6, 6);
        var y = tensor(new long[] { 0, 1, 2, 0, 1, 2, 0, 1 });
        // One real step first, so running statistics and initialisation flags hold non-default values and the
        // parameters carry gradients the probe must put back.
        model.train();
        nn.functional.cross_entropy(model.call(x), y).backward();
        foreach (var uan in model.modules().OfType<UnsupervisedAdaptiveNorm>()) uan.ApplyReferenceUpdate();
        var fc = model.modules().OfType<Linear>().Single();
        fc.bias!.grad = null;                    // a parameter without a gradient stays without one
        model.eval();
        model.modules().OfType<BatchNorm1d>().Single().train();   // mixed modes are restored per module

        var before = Copy(model);
        var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad?.clone());
        var modes = model.modules().Select(m => m.training).Prepend(model.training).ToArray();
        var rng = get_rng_state().clone();

        foreach (var probe in GradientProbe.MeasureAll(model, x * 2 + 1, y))
        {
            Assert.True(probe.Max > 0 && double.IsFinite(probe.Max), $"{probe.Definition}: max {probe.Max}");
            Assert.True(probe.Mean > 0 && probe.Mean <= probe.Max);
        }

        var after = model.state_dict();
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (key, value) in before)
            Assert.True(Same(value, after[key]), $"{norm}: {key} changed");
        foreach (var (name, p) in model.named_parameters())
        {
            var g = grads[name];
            if (g is null) Assert.True(p.grad is null, $"{name} gained a gradient");
            else Assert.True(p.grad is not null && Same(g, p.grad), $"{name}: gradient changed");
        }
        Assert.Equal(modes, model.modules().Select(m => m.training).Prepend(model.training).ToArray());
        Assert.True(Same(rng, get_rng_state()));
    }

    private static bool Same(Tensor a, Tensor b) => a.dtype == b.dtype && a.shape.SequenceEqual(b.shape) && a.contiguous().bytes.ToArray().SequenceEqual(b.contiguous().bytes.ToArray());

    [Fact]
    public void VarianceOfALinearModelMatchesAHandComputedValue()
    {
        // 2 outputs, 3 inputs, 4 samples: small enough to differentiate by hand in double precision.
        double[,] w = { { 0.5, -1.0, 0.25 }, { 1.5, 0.75, -0.5 } };
        double[] b = { 0.1, -0.2 };
        double[,] x = { { 1, 2, 3 }, { -1, 0.5, 2 }, { 0, -2, 1 }, { 3, 1, -1 } };
        long[] labels = { 0, 1, 1, 0 };
        var model = nn.Linear(3, 2);
        using (no_grad())
        {
            model.weight!.copy_(tensor(new float[] { 0.5f, -1.0f, 0.25f, 1.5f, 0.75f, -0.5f }).reshape(2, 3));
            model.bias!.copy_(tensor(new float[] { 0.1f, -0.2f }));
        }
        var input = tensor(new float[] { 1, 2, 3, -1, 0.5f, 2, 0, -2, 1, 3, 1, -1 }).reshape(4, 3);

        // Σ logits: dW[i,j] = Σ_n x[n,j] for both rows i; db[i] = N.
        var gw = new double[6]; var gb = new double[2];
        for (int i = 0; i < 2; i++)
        {
            for (int j = 0; j < 3; j++) for (int n = 0; n < 4; n++) gw[i * 3 + j] += x[n, j];
            gb[i] = 4;
        }
        AssertVariances(GradientProbe.Measure(model, input, null, GradientDefinition.Paper), gw, gb);

        // Mean cross-entropy: dz[n,i] = (softmax(z)[n,i] − onehot[n,i]) / N; dW = dzᵀ x; db = Σ_n dz.
        gw = new double[6]; gb = new double[2];
        for (int n = 0; n < 4; n++)
        {
            var z = new double[2];
            for (int i = 0; i < 2; i++) { z[i] = b[i]; for (int j = 0; j < 3; j++) z[i] += w[i, j] * x[n, j]; }
            double m = Math.Max(z[0], z[1]), s = Math.Exp(z[0] - m) + Math.Exp(z[1] - m);
            for (int i = 0; i < 2; i++)
            {
                double dz = (Math.Exp(z[i] - m) / s - (labels[n] == i ? 1 : 0)) / 4;
                gb[i] += dz;
                for (int j = 0; j < 3; j++) gw[i * 3 + j] += dz * x[n, j];
            }
        }
        AssertVariances(GradientProbe.Measure(model, input, tensor(labels), GradientDefinition.Loss), gw, gb);
    }

    private static double PopulationVariance(double[] v)
    {
        double mean = v.Average();
        return v.Sum(a => (a - mean) * (a - mean)) / v.Length;
    }

    private static void AssertVariances(GradientVariance probe, double[] gw, double[] gb)
    {
        var byName = probe.Tensors.ToDictionary(t => t.Name);
        double vw = PopulationVariance(gw), vb = PopulationVariance(gb);
        Assert.Equal(vw, byName["weight"].Variance, 1e-6 * Math.Max(1, vw));
        Assert.Equal(vb, byName["bias"].Variance, 1e-6 * Math.Max(1, vb));
        Assert.Equal(Math.Max(vw, vb), probe.Max, 1e-6 * Math.Max(1, vw));
        Assert.Equal((vw + vb) / 2, probe.Mean, 1e-6 * Math.Max(1, vw));
    }

    [Fact]
    public void LossDefinitionWithoutLabelsIsRejected() =>
        Assert.Throws<ArgumentException>(() => GradientProbe.Measure(nn.Linear(3, 2), randn(4, 3), null, GradientDefinition.Loss));

    [Fact]
    public void ProbeLogRoundTripsAndTheFigureIsAPng()
    {
        var dir = Path.Combine(Path.GetTempPath(), "uan-probe-" + Guid.NewGuid().ToString("N"));
        try
        {
            var records = new List<GradientProbeRecord>();
            for (int e = 1; e <= 6; e++)
                foreach (var domain in new[] { "source", "target" })
                    foreach (var def in new[] { "paper", "loss" })
                        records.Add(new GradientProbeRecord(e, domain, def, Math.Pow(10, -e) * (domain == "source" ? 3 : 1), Math.Pow(10, -e - 2)));
            GradientProbeLog.Save(dir, records);
            Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
            Assert.Equal(records, GradientProbeLog.Load(dir));

            var png = GradientVarianceFigure.Render([new("AdaMatch", records), new("AdaMatch+UAN", records.Select(r => r with { Max = r.Max / 2 }).ToList())]);
            Assert.True(png.Length > 1000);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png.Take(4).ToArray());
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void SeedsOfOneAdaMatchConfigurationShareAGradientLine()
    {
        var a = new Uan.Lab.Adaptation.AdaMatchConfig { Seed = 1, Threads = 1 };
        var groups = Uan.Lab.Reporting.FiguresWriter.SeedGroups(new Uan.Lab.Adaptation.AdaMatchConfig?[]
        {
            a, a with { Seed = 2, Threads = 2 },                 // the same configuration: one line
            a with { LearningRate = 0.01 },                      // same label, another configuration: kept apart
            a with { InputNorm = "uan:k=2", Seed = 3 },
            null,                                                // not an AdaMatch run: its own line
        });
        Assert.Equal(new[] { "AdaMatch", "AdaMatch", "AdaMatch [2]", "AdaMatch + UAN (input uan:k=2)", null }, groups);
    }
}
