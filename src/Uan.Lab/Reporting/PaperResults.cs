namespace Uan.Lab.Reporting;

/// <summary>
/// One published shallow-CNN row: test accuracy (%) at 25 / 50 / 75 / 100 of 100 epochs, most likely the test accuracy
/// of the best-validation checkpoint so far (spec Part B §4.1, evaluation protocol).
/// </summary>
/// <param name="Dataset">Dataset id: cifar10, cifar100 or tiny-imagenet.</param>
/// <param name="Model">Model id (shallow-cnn).</param>
/// <param name="NormFamily">BN, MN or UAN.</param>
/// <param name="Row">The row name as published (BN-1, UAN-2, ...).</param>
/// <param name="LearningRate">AdamW learning rate: 0.001 for "-1" rows, 0.005 for "-2" rows.</param>
/// <param name="Acc25">Test accuracy (%) at epoch 25.</param>
/// <param name="Acc50">Test accuracy (%) at epoch 50.</param>
/// <param name="Acc75">Test accuracy (%) at epoch 75.</param>
/// <param name="Acc100">Test accuracy (%) at epoch 100.</param>
public sealed record PaperAccuracyRow(
    string Dataset, string Model, string NormFamily, string Row, double LearningRate,
    double Acc25, double Acc50, double Acc75, double Acc100)
{
    /// <summary>The four accuracies (%) in epoch order 25, 50, 75, 100.</summary>
    public IReadOnlyList<double> Accuracies => [Acc25, Acc50, Acc75, Acc100];
}

/// <summary>
/// One published row of final test metrics (%; loss as is). Used for the DenseNet table (spec Part B §4.2) and the
/// AdaMatch table (§4.3).
/// </summary>
/// <param name="Dataset">Dataset the metrics were measured on (cifar100; mnist or svhn for AdaMatch).</param>
/// <param name="Model">Model id: densenet40, densenet100, adamatch-wrn-28-2.</param>
/// <param name="NormFamily">BN, MN or UAN (AdaMatch: BN for the plain baseline, UAN for AdaMatch+UAN).</param>
/// <param name="Row">The row name as published (corrected where the spec notes a mislabelled row).</param>
/// <param name="Loss">Test loss, or null when not published.</param>
/// <param name="Accuracy">Test accuracy (%).</param>
/// <param name="Precision">Precision (%), as published (its averaging is described in the spec).</param>
/// <param name="Recall">Recall (%), as published.</param>
/// <param name="F1">F1 (%), as published.</param>
public sealed record PaperMetricsRow(
    string Dataset, string Model, string NormFamily, string Row,
    double? Loss, double Accuracy, double Precision, double Recall, double F1);

/// <summary>The published numbers for one (dataset, model), with where they come from.</summary>
/// <param name="Dataset">Dataset id.</param>
/// <param name="Model">Model id.</param>
/// <param name="Source">Citation for this table.</param>
/// <param name="AccuracyRows">Accuracy-over-epochs rows (shallow CNN); empty otherwise.</param>
/// <param name="MetricRows">Final-metrics rows (DenseNet, AdaMatch); empty otherwise.</param>
/// <param name="Notes">Caveats the reader needs to compare against these numbers.</param>
public sealed record PaperTable(
    string Dataset, string Model, string Source,
    IReadOnlyList<PaperAccuracyRow> AccuracyRows, IReadOnlyList<PaperMetricsRow> MetricRows,
    IReadOnlyList<string> Notes);

/// <summary>
/// The numbers published for UAN, transcribed from the project spec (Part B §4.1–4.3), which took them from the
/// official repository's README. Only what the spec lists is here: nothing is derived or filled in.
/// </summary>
public static class PaperResults
{
    /// <summary>The paper, and where its numbers were read.</summary>
    public const string Citation =
        "Faye et al. 2024, \"UAN: Unsupervised Adaptive Normalization\" (arXiv 2409.04757; IJCNN 2024); numbers as " +
        "published in the README of github.com/b-faye/unsupervised-adaptive-normalization @8e9b329, whose tables " +
        "presumably mirror the paper's";

    /// <summary>Model id of the shallow CNN of spec §4.1.</summary>
    public const string ShallowCnn = "shallow-cnn";

    /// <summary>Model id under which the AdaMatch (WRN-28-2, MNIST → SVHN) rows are filed.</summary>
    public const string AdaMatch = "adamatch-wrn-28-2";

    private const double Lr1 = 0.001, Lr2 = 0.005;

    private static PaperAccuracyRow S(string dataset, string row, double a25, double a50, double a75, double a100) =>
        new(dataset, ShallowCnn, row[..row.IndexOf('-')], row, row.EndsWith("-1", StringComparison.Ordinal) ? Lr1 : Lr2,
            a25, a50, a75, a100);

    /// <summary>Shallow CNN, BN / MN / UAN at conv2, test accuracy (%) at 25 / 50 / 75 / 100 epochs (spec §4.1).</summary>
    public static IReadOnlyList<PaperAccuracyRow> ShallowCnnRows { get; } =
    [
        S("cifar10", "BN-1", 84.34, 86.49, 86.41, 86.90),
        S("cifar10", "BN-2", 83.44, 84.39, 85.65, 85.65),
        S("cifar10", "MN-1", 84.45, 86.60, 86.6, 87.07),
        S("cifar10", "MN-2", 83.47, 84.60, 85.68, 85.80),
        S("cifar10", "UAN-1", 85.15, 85.80, 87.97, 87.97),
        S("cifar10", "UAN-2", 86.04, 86.04, 87.49, 87.49),

        S("cifar100", "BN-1", 57.41, 59.74, 59.82, 59.82),
        S("cifar100", "BN-2", 55.64, 56.97, 56.29, 56.29),
        S("cifar100", "MN-1", 56.90, 59.80, 59.80, 60.10),
        S("cifar100", "MN-2", 55.80, 55.80, 56.56, 57.09),
        S("cifar100", "UAN-1", 59.44, 61.10, 61.10, 61.10),
        S("cifar100", "UAN-2", 58.31, 60.29, 60.29, 60.29),

        S("tiny-imagenet", "BN-1", 37.17, 37.17, 37.17, 37.17),
        S("tiny-imagenet", "BN-2", 34.11, 34.11, 34.11, 34.11),
        S("tiny-imagenet", "MN-1", 38.18, 38.17, 38.5, 38.5),
        S("tiny-imagenet", "MN-2", 34.56, 34.99, 35.12, 35.27),
        S("tiny-imagenet", "UAN-1", 39.71, 39.71, 39.71, 39.71),
        S("tiny-imagenet", "UAN-2", 35.78, 37.03, 37.03, 37.03),
    ];

    /// <summary>DenseNet-40 / DenseNet-100 on CIFAR-100, final test metrics after 200 epochs (spec §4.2).</summary>
    public static IReadOnlyList<PaperMetricsRow> DenseNetRows { get; } =
    [
        new("cifar100", "densenet40", "BN", "DenseNet-40+BN", 1.7437, 61.28, 68.76, 57.38, 61.47),
        new("cifar100", "densenet40", "MN", "DenseNet-40+MN", 1.5560, 62.11, 70.13, 59.11, 62.10),
        new("cifar100", "densenet40", "UAN", "DenseNet-40+UAN", 1.5369, 63.21, 71.58, 59.21, 63.29),
        new("cifar100", "densenet100", "BN", "DenseNet-100+BN", 1.9225, 69.16, 71.57, 68.34, 69.28),
        new("cifar100", "densenet100", "MN", "DenseNet-100+MN", 1.9010, 69.50, 71.80, 68.40, 69.57),
        new("cifar100", "densenet100", "UAN", "DenseNet-100+UAN", 1.8932, 69.65, 71.83, 68.55, 69.82),
    ];

    /// <summary>AdaMatch (WRN-28-2), MNIST → SVHN, with and without UAN (spec §4.3). No loss is published.</summary>
    public static IReadOnlyList<PaperMetricsRow> AdaMatchRows { get; } =
    [
        new("mnist", AdaMatch, "BN", "AdaMatch (MNIST, source)", null, 97.36, 87.33, 79.39, 78.09),
        new("mnist", AdaMatch, "UAN", "AdaMatch+UAN (MNIST, source)", null, 98.9, 98.5, 98.90, 98.95),
        new("svhn", AdaMatch, "BN", "AdaMatch (SVHN, target)", null, 25.08, 31.64, 20.46, 24.73),
        new("svhn", AdaMatch, "UAN", "AdaMatch+UAN (SVHN, target)", null, 33.4, 43.83, 40.28, 42.87),
    ];

    private static readonly Dictionary<string, string> TableNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["cifar10"] = "README, shallow-CNN CIFAR-10 table",
        ["cifar100"] = "README, shallow-CNN CIFAR-100 table",
        ["tiny-imagenet"] = "README, shallow-CNN Tiny ImageNet table",
    };

    /// <summary>
    /// The published table for <paramref name="dataset"/> and <paramref name="model"/> (ids compared ignoring case),
    /// or null when the paper reports nothing for that pair.
    /// </summary>
    public static PaperTable? Find(string dataset, string model)
    {
        bool Match(string d, string m) =>
            string.Equals(d, dataset, StringComparison.OrdinalIgnoreCase) &&
            string.Equals(m, model, StringComparison.OrdinalIgnoreCase);

        var acc = ShallowCnnRows.Where(r => Match(r.Dataset, r.Model)).ToList();
        if (acc.Count > 0)
            return new PaperTable(acc[0].Dataset, acc[0].Model, $"{Citation} ({TableNames[acc[0].Dataset]})", acc, [],
            [
                "Test accuracy (%) at 25/50/75/100 of 100 epochs; -1 rows lr 0.001, -2 rows lr 0.005 (AdamW).",
                "Probably the test accuracy of the best-validation checkpoint so far (spec Part B §4.1); " +
                "the BN/MN rows are shared with the authors' sibling papers.",
            ]);

        var dense = DenseNetRows.Where(r => Match(r.Dataset, r.Model)).ToList();
        if (dense.Count > 0)
            return new PaperTable(dense[0].Dataset, dense[0].Model, $"{Citation} (README, DenseNet CIFAR-100 table)", [],
                dense,
                [
                    "Final model after 200 epochs (SGD, step schedule); loss as is, other metrics in %.",
                    "Precision/recall are Keras thresholded (0.5) metrics, F1 is tfa's per-class F1 (presumably macro " +
                    "mean), so they are not comparable one-to-one with the macro metrics computed here.",
                    "The README labels the DenseNet-100 rows \"DenseNet-40+…\"; they are named by model here.",
                ]);

        var ada = AdaMatchRows.Where(r => Match(r.Dataset, r.Model)).ToList();
        if (ada.Count > 0)
            return new PaperTable(ada[0].Dataset, ada[0].Model, $"{Citation} (README, AdaMatch MNIST → SVHN table)", [],
                ada,
                [
                    "Trained MNIST → SVHN; metrics in %. The averaging of precision/recall/F1 is not known.",
                ]);

        return null;
    }
}
