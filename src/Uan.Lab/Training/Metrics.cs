using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Training;

/// <summary>
/// Accumulates loss, top-1 and top-5 hits and a confusion matrix over batches, then reports accuracy and macro
/// precision, recall and F1. Macro is the unweighted mean over the classes that occur in the labels or the
/// predictions, with 0 for an undefined ratio (scikit-learn's average='macro', zero_division=0).
/// </summary>
public sealed class ClassificationMetrics
{
    private readonly long[,] _confusion;
    private double _lossSum;
    private long _count;
    private long _top5;

    /// <summary>Creates an empty accumulator for <paramref name="numClasses"/> classes.</summary>
    public ClassificationMetrics(int numClasses)
    {
        if (numClasses < 2) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "need at least 2 classes");
        NumClasses = numClasses;
        _confusion = new long[numClasses, numClasses];
    }

    /// <summary>Number of classes.</summary>
    public int NumClasses { get; }

    /// <summary>Samples seen.</summary>
    public long Count => _count;

    /// <summary>Adds a batch: logits [N, classes], integer labels [N], and the batch's mean loss.</summary>
    public void Add(Tensor logits, Tensor labels, double meanLoss)
    {
        using var scope = NewDisposeScope();
        long n = labels.shape[0];
        var pred = logits.argmax(1).to(ScalarType.Int64).cpu().data<long>().ToArray();
        var y = labels.to(ScalarType.Int64).cpu().data<long>().ToArray();
        for (int i = 0; i < pred.Length; i++) _confusion[y[i], pred[i]]++;
        int k = Math.Min(5, NumClasses);
        var topk = logits.topk(k, dim: 1).indexes;
        _top5 += topk.eq(labels.to(ScalarType.Int64).unsqueeze(1)).any(1).sum().item<long>();
        _lossSum += meanLoss * n;
        _count += n;
    }

    /// <summary>Mean loss per sample.</summary>
    public double Loss => _count == 0 ? double.NaN : _lossSum / _count;

    /// <summary>Top-1 accuracy.</summary>
    public double Accuracy => _count == 0 ? double.NaN : (double)Hits / _count;

    /// <summary>Samples whose argmax prediction is the label (top-1 hits), so far.</summary>
    public long Hits
    {
        get
        {
            long hits = 0;
            for (int c = 0; c < NumClasses; c++) hits += _confusion[c, c];
            return hits;
        }
    }

    /// <summary>Top-5 accuracy (top-k with k = classes when there are fewer than 5).</summary>
    public double Top5 => _count == 0 ? double.NaN : (double)_top5 / _count;

    /// <summary>Macro precision, recall and F1 (per-class F1 from per-class precision and recall, then the mean).</summary>
    public (double Precision, double Recall, double F1) Macro()
    {
        double p = 0, r = 0, f = 0;
        int present = 0;
        for (int c = 0; c < NumClasses; c++)
        {
            long tp = _confusion[c, c], predicted = 0, actual = 0;
            for (int j = 0; j < NumClasses; j++) { predicted += _confusion[j, c]; actual += _confusion[c, j]; }
            double pc = predicted == 0 ? 0 : (double)tp / predicted;
            double rc = actual == 0 ? 0 : (double)tp / actual;
            if (actual == 0 && predicted == 0) continue;
            p += pc; r += rc; f += pc + rc == 0 ? 0 : 2 * pc * rc / (pc + rc);
            present++;
        }
        return present == 0 ? (double.NaN, double.NaN, double.NaN) : (p / present, r / present, f / present);
    }

    /// <summary>Confusion matrix, rows = true class, columns = predicted class.</summary>
    public long[,] Confusion => (long[,])_confusion.Clone();
}
