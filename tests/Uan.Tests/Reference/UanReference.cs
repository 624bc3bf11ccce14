namespace Uan.Tests.Reference;

/// <summary>
/// Plain-loop, double-precision reference of the UAN formulas (spec Part A2, Part B §1.2 and §5.2(C)), written
/// independently of the library. Inputs are flat row-major arrays of shape [N, C, S], index (n·C + c)·S + s, where
/// S is the product of the spatial dims (S = 1 for a 2-D input). Mixture parameters are double[K, C].
/// </summary>
public static class UanReference
{
    public static double Softplus(double v) => v > 0 ? v + Math.Log(1 + Math.Exp(-v)) : Math.Log(1 + Math.Exp(v));

    static int Index(int n, int c, int s, int C, int S) => (n * C + c) * S + s;

    /// <summary>log λ_kc = alpha_kc − log Σ_j exp(alpha_jc).</summary>
    public static double[,] LogLambda(double[,] alpha)
    {
        int K = alpha.GetLength(0), C = alpha.GetLength(1);
        var r = new double[K, C];
        for (int c = 0; c < C; c++)
        {
            double max = double.NegativeInfinity;
            for (int k = 0; k < K; k++) max = Math.Max(max, alpha[k, c]);
            double sum = 0;
            for (int k = 0; k < K; k++) sum += Math.Exp(alpha[k, c] - max);
            double lse = max + Math.Log(sum);
            for (int k = 0; k < K; k++) r[k, c] = alpha[k, c] - lse;
        }
        return r;
    }

    /// <summary>σ²_kc = softplus(rho_kc) + eps.</summary>
    public static double[,] Variance(double[,] rho, double eps)
    {
        int K = rho.GetLength(0), C = rho.GetLength(1);
        var r = new double[K, C];
        for (int k = 0; k < K; k++)
            for (int c = 0; c < C; c++)
                r[k, c] = Softplus(rho[k, c]) + eps;
        return r;
    }

    /// <summary>
    /// Responsibilities τ[k][(n·C + c)·S + s] = softmax_k(ℓ_k), ℓ_k = log λ_k − ½ log σ²_k − (x − μ_k)²/(2σ²_k).
    /// </summary>
    public static double[][] Responsibilities(double[] x, int N, int C, int S, double[,] mu, double[,] rho,
        double[,] alpha, double eps)
    {
        int K = mu.GetLength(0);
        var logLambda = LogLambda(alpha);
        var variance = Variance(rho, eps);
        var tau = new double[K][];
        for (int k = 0; k < K; k++) tau[k] = new double[x.Length];
        var l = new double[K];
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int s = 0; s < S; s++)
                {
                    int i = Index(n, c, s, C, S);
                    double max = double.NegativeInfinity;
                    for (int k = 0; k < K; k++)
                    {
                        double d = x[i] - mu[k, c];
                        l[k] = logLambda[k, c] - 0.5 * Math.Log(variance[k, c]) - d * d / (2 * variance[k, c]);
                        max = Math.Max(max, l[k]);
                    }
                    double sum = 0;
                    for (int k = 0; k < K; k++) sum += Math.Exp(l[k] - max);
                    double lse = max + Math.Log(sum);
                    for (int k = 0; k < K; k++) tau[k][i] = Math.Exp(l[k] - lse);
                }
        return tau;
    }

    static void ApplyAffine(double[] y, int N, int C, int S, double[]? weight, double[]? bias)
    {
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int s = 0; s < S; s++)
                {
                    int i = Index(n, c, s, C, S);
                    if (weight is not null) y[i] *= weight[c];
                    if (bias is not null) y[i] += bias[c];
                }
    }

    /// <summary>Paper mode: y = Σ_k τ_k · exp(−½ log λ_k) · (x − μ_k) / sqrt(σ²_k), then optional affine.</summary>
    public static double[] Paper(double[] x, int N, int C, int S, double[,] mu, double[,] rho, double[,] alpha,
        double eps, double[]? weight = null, double[]? bias = null)
    {
        int K = mu.GetLength(0);
        var tau = Responsibilities(x, N, C, S, mu, rho, alpha, eps);
        var logLambda = LogLambda(alpha);
        var variance = Variance(rho, eps);
        var y = new double[x.Length];
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int s = 0; s < S; s++)
                {
                    int i = Index(n, c, s, C, S);
                    double acc = 0;
                    for (int k = 0; k < K; k++)
                        acc += tau[k][i] * Math.Exp(-0.5 * logLambda[k, c]) * (x[i] - mu[k, c]) /
                               Math.Sqrt(variance[k, c]);
                    y[i] = acc;
                }
        ApplyAffine(y, N, C, S, weight, bias);
        return y;
    }

    /// <summary>
    /// BatchStats in training. Per k and c over all n, s: s_k = Σ τ_k, m_k = Σ τ_k x / s_k,
    /// v_k = Σ τ_k (x − m_k)² / s_k; y = Σ_k τ_k exp(−½ log λ_k) (x − m_k) / sqrt(v_k + eps).
    /// </summary>
    public static (double[] Y, double[,] Mean, double[,] Var) BatchStatsTrain(double[] x, int N, int C, int S,
        double[,] mu, double[,] rho, double[,] alpha, double eps, double[]? weight = null, double[]? bias = null)
    {
        int K = mu.GetLength(0);
        var tau = Responsibilities(x, N, C, S, mu, rho, alpha, eps);
        var m = new double[K, C];
        var v = new double[K, C];
        for (int k = 0; k < K; k++)
            for (int c = 0; c < C; c++)
            {
                double sk = 0, sx = 0;
                for (int n = 0; n < N; n++)
                    for (int s = 0; s < S; s++)
                    {
                        int i = Index(n, c, s, C, S);
                        sk += tau[k][i];
                        sx += tau[k][i] * x[i];
                    }
                m[k, c] = sx / sk;
                double sv = 0;
                for (int n = 0; n < N; n++)
                    for (int s = 0; s < S; s++)
                    {
                        int i = Index(n, c, s, C, S);
                        double d = x[i] - m[k, c];
                        sv += tau[k][i] * d * d;
                    }
                v[k, c] = sv / sk;
            }
        var y = Combine(x, N, C, S, tau, LogLambda(alpha), m, v, eps);
        ApplyAffine(y, N, C, S, weight, bias);
        return (y, m, v);
    }

    /// <summary>BatchStats in eval: as in training, with the given component means and variances.</summary>
    public static double[] BatchStatsEval(double[] x, int N, int C, int S, double[,] mu, double[,] rho,
        double[,] alpha, double[,] runningMean, double[,] runningVar, double eps, double[]? weight = null,
        double[]? bias = null)
    {
        var tau = Responsibilities(x, N, C, S, mu, rho, alpha, eps);
        var y = Combine(x, N, C, S, tau, LogLambda(alpha), runningMean, runningVar, eps);
        ApplyAffine(y, N, C, S, weight, bias);
        return y;
    }

    static double[] Combine(double[] x, int N, int C, int S, double[][] tau, double[,] logLambda, double[,] m,
        double[,] v, double eps)
    {
        int K = m.GetLength(0);
        var y = new double[x.Length];
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++)
                for (int s = 0; s < S; s++)
                {
                    int i = Index(n, c, s, C, S);
                    double acc = 0;
                    for (int k = 0; k < K; k++)
                        acc += tau[k][i] * Math.Exp(-0.5 * logLambda[k, c]) * (x[i] - m[k, c]) /
                               Math.Sqrt(v[k, c] + eps);
                    y[i] = acc;
                }
        return y;
    }

    /// <summary>Output and recorded statistics of the reference-compatible forward.</summary>
    public sealed record CompatResult(double[] Y, double[,] OutputMean, double[,] OutputVar,
        double[] MeanResponsibility, double[][] Tau);

    /// <summary>
    /// ReferenceCompat (spec Part B §1.2, §5.2(C)), channel on dim 1: σ² = softplus(rho);
    /// p_k = exp(−½ (x − μ_k)² / (σ²_k + eps)); τ_k = p_k / (Σ_j p_j + eps); τ̂_k = τ_k / (Σ_{n,s} τ_k + eps);
    /// E_k[n,c] = mean_s τ̂_k x; V_k[n,c] = mean_s τ̂_k (τ̂_k x)²; h_k = τ_k / sqrt(1 + eps) (x − E_k) / sqrt(V_k + eps);
    /// y = Σ_k h_k. Statistics: mean and population variance of h_k over n, s per (k, c); mean of τ_k over n, c, s.
    /// </summary>
    public static CompatResult ReferenceCompat(double[] x, int N, int C, int S, double[,] mu, double[,] rho,
        double eps)
    {
        int K = mu.GetLength(0);
        var tau = new double[K][];
        for (int k = 0; k < K; k++) tau[k] = new double[x.Length];
        var p = new double[K];
        for (int i = 0; i < x.Length; i++)
        {
            int c = i / S % C;
            double sum = 0;
            for (int k = 0; k < K; k++)
            {
                double d = x[i] - mu[k, c];
                p[k] = Math.Exp(-0.5 * d * d / (Softplus(rho[k, c]) + eps));
                sum += p[k];
            }
            for (int k = 0; k < K; k++) tau[k][i] = p[k] / (sum + eps);
        }

        var y = new double[x.Length];
        var outMean = new double[K, C];
        var outVar = new double[K, C];
        var tauMean = new double[K];
        var h = new double[x.Length];
        for (int k = 0; k < K; k++)
        {
            for (int c = 0; c < C; c++)
            {
                double total = 0;
                for (int n = 0; n < N; n++)
                    for (int s = 0; s < S; s++)
                        total += tau[k][Index(n, c, s, C, S)];
                for (int n = 0; n < N; n++)
                {
                    double e = 0, v = 0;
                    for (int s = 0; s < S; s++)
                    {
                        int i = Index(n, c, s, C, S);
                        double th = tau[k][i] / (total + eps);
                        e += th * x[i];
                        v += th * (th * x[i]) * (th * x[i]);
                    }
                    e /= S;
                    v /= S;
                    for (int s = 0; s < S; s++)
                    {
                        int i = Index(n, c, s, C, S);
                        h[i] = tau[k][i] / Math.Sqrt(1 + eps) * (x[i] - e) / Math.Sqrt(v + eps);
                        y[i] += h[i];
                    }
                }
                double hm = 0;
                for (int n = 0; n < N; n++)
                    for (int s = 0; s < S; s++)
                        hm += h[Index(n, c, s, C, S)];
                hm /= N * S;
                double hv = 0;
                for (int n = 0; n < N; n++)
                    for (int s = 0; s < S; s++)
                    {
                        double d = h[Index(n, c, s, C, S)] - hm;
                        hv += d * d;
                    }
                outMean[k, c] = hm;
                outVar[k, c] = hv / (N * S);
            }
            double tm = 0;
            for (int i = 0; i < x.Length; i++) tm += tau[k][i];
            tauMean[k] = tm / x.Length;
        }
        return new CompatResult(y, outMean, outVar, tauMean, tau);
    }

    /// <summary>Mean over all elements of −log Σ_k λ_k N(x | μ_k, σ²_k), σ² = softplus(rho) + eps.</summary>
    public static double NegativeLogLikelihood(double[] x, int N, int C, int S, double[,] mu, double[,] rho,
        double[,] alpha, double eps)
    {
        int K = mu.GetLength(0);
        var logLambda = LogLambda(alpha);
        var variance = Variance(rho, eps);
        var l = new double[K];
        double total = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int c = i / S % C;
            double max = double.NegativeInfinity;
            for (int k = 0; k < K; k++)
            {
                double d = x[i] - mu[k, c];
                l[k] = logLambda[k, c] - 0.5 * Math.Log(2 * Math.PI * variance[k, c]) - d * d / (2 * variance[k, c]);
                max = Math.Max(max, l[k]);
            }
            double sum = 0;
            for (int k = 0; k < K; k++) sum += Math.Exp(l[k] - max);
            total += -(max + Math.Log(sum));
        }
        return total / x.Length;
    }
}
