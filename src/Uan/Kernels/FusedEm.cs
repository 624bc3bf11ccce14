using static TorchSharp.torch;
using static Uan.Kernels.KernelMath;

namespace Uan.Kernels;

/// <summary>
/// EM for per-channel Gaussian mixtures as one fused pass per iteration (E-step sums and the channel variance for
/// the floor together), on data laid out [N, C, S] (rows [C, M] are the case N = 1). Same update as
/// <see cref="MixtureEm.Step"/>; runs without autograd.
/// </summary>
internal static unsafe class FusedEm
{
    /// <summary>True when <see cref="Step"/> can take x (laid out [N, C, ...]) with this mixture.</summary>
    public static bool CanFuse(Tensor x, GaussianMixture m) =>
        UanKernels.CanFuse(x, m.Weights, m.Means, m.Variances);

    /// <summary>One EM iteration on x [N, C, ...]; returns the new mixture and the mean log-likelihood [C].</summary>
    public static (GaussianMixture Mixture, Tensor LogLikelihood) Step(Tensor x, GaussianMixture start)
    {
        var (mixture, logLik) = Iterate(x, start, true);
        return (mixture, logLik!);
    }

    /// <summary>One EM iteration on x [N, C, ...], the new mixture only (no log-likelihood: one log per element less).</summary>
    public static GaussianMixture Advance(Tensor x, GaussianMixture start) => Iterate(x, start, false).Mixture;

    static (GaussianMixture Mixture, Tensor? LogLikelihood) Iterate(Tensor x, GaussianMixture start, bool withLogLikelihood)
    {
        int k = (int)start.Components;
        var (n, c, s) = Dims(x);
        long count = n * s;
        var w = Values(start.Weights)!;
        var mu = Values(start.Means)!;
        var v = Values(start.Variances)!;
        var logW = w.Select(p => Math.Log(p)).ToArray();
        var m = new MixtureKernel.Mixture(k, c, mu, logW, v, mu, new double[k * c], null, null);
        // The mixture's own mean is close to the channel mean: a good shift for the channel variance sums.
        var reference = new double[c];
        for (long ch = 0; ch < c; ch++)
            for (int j = 0; j < k; j++)
                reference[ch] += w[j * c + ch] * mu[j * c + ch];
        using var xd = x.detach();
        var sums = x.dtype == ScalarType.Float32
            ? MixtureKernel.EmSums(Ptr<float>(xd), n, s, m, reference, withLogLikelihood)
            : MixtureKernel.EmSums(Ptr<double>(xd), n, s, m, reference, withLogLikelihood);

        int slots = 3 * k + 3;
        var newW = new double[k * c];
        var newMu = new double[k * c];
        var newV = new double[k * c];
        var logLik = new double[c];
        for (long ch = 0; ch < c; ch++)
        {
            long at = ch * slots;
            logLik[ch] = sums[at + 3 * k] / count - 0.5 * Math.Log(2 * Math.PI);
            double dm = sums[at + 3 * k + 1] / count;
            double channelVar = Math.Max(sums[at + 3 * k + 2] / count - dm * dm, 0);
            double floor = channelVar * MixtureEm.VarianceFloor + 1e-12;
            double total = 0;
            for (int j = 0; j < k; j++)
            {
                long kc = j * c + ch;
                double sk = sums[at + 3 * j];
                // A component whose responsibility mass vanishes keeps its previous values (as MixtureEm.Step).
                if (sk > 1e-8 * count)
                {
                    double p = sums[at + 3 * j + 1] / sk, q = sums[at + 3 * j + 2] / sk;
                    newMu[kc] = mu[kc] + p;
                    newV[kc] = Math.Max(q - p * p, floor);
                    newW[kc] = sk / count;
                }
                else
                {
                    newMu[kc] = mu[kc];
                    newV[kc] = v[kc];
                    newW[kc] = w[kc];
                }
                total += newW[kc];
            }
            for (int j = 0; j < k; j++) newW[j * c + ch] /= total;
        }
        long[] kc2 = { k, c };
        var dtype = start.Means.dtype;
        return (new GaussianMixture(ToTensor(newW, kc2, dtype), ToTensor(newMu, kc2, dtype), ToTensor(newV, kc2, dtype)),
            withLogLikelihood ? ToTensor(logLik, new[] { c }, dtype) : null);
    }
}
