using System.CommandLine;
using Uan.Lab.Data;
using Uan.Lab.Models;
using Uan.Lab.Training;

namespace Uan.Cli;

/// <summary>The options shared by <c>train</c> and <c>compare</c>, and the <see cref="RunConfig"/> they make.</summary>
internal sealed class RunOptions(int defaultBatch = 256, int? defaultTrainLimit = null)
{
    /// <summary>Default norm of the shallow CNN's other layers: Keras BatchNorm's eps with torch's momentum (see --other-norm).</summary>
    public const string DefaultOtherNorm = "bn:eps=1e-3,momentum=0.1";

    /// <summary>Upper ends of the option ranges: far above any use, low enough to catch a slip of the keyboard.</summary>
    public const int MaxEpochs = 100_000, MaxBatch = 65_536, MaxImageSize = 1024, MaxThreads = 1024;

    /// <summary>Largest learning rate accepted.</summary>
    public const double MaxLearningRate = 10;

    public Option<string> Dataset { get; } = new("--dataset", "-d")
    { Description = $"Dataset: {string.Join(", ", DataLocator.KnownIds)}", DefaultValueFactory = _ => "mnist-subset" };
    public Option<string> Model { get; } = new("--model", "-m")
    { Description = "Model: shallow-cnn, densenet40, densenet100, wrn-16-2, wrn-28-2", DefaultValueFactory = _ => "shallow-cnn" };
    public Option<int> Epochs { get; } = new Option<int>("--epochs", "-e") { Description = "Training epochs" }.InRange(1, MaxEpochs);
    public Option<int> BatchSize { get; } = new Option<int>("--batch-size", "-b") { Description = "Batch size (the paper's: 256)", DefaultValueFactory = _ => defaultBatch }.InRange(1, MaxBatch);
    public Option<int?> TrainLimit { get; } = new Option<int?>("--train-limit")
    {
        Description = "Use a stratified subset of this many images of the training file, of which --val-fraction (stratified) is held out for validation, as --subset does; 0 = all",
        DefaultValueFactory = _ => defaultTrainLimit,
    }.InRange(0).WhenAbsent(defaultTrainLimit is int d and > 0 ? $"{d}" : "0, all");
    public Option<int?> TestLimit { get; } = new Option<int?>("--test-limit") { Description = "Use a stratified subset of this many test images" }
        .InRange(1).WhenAbsent("all test images");
    public Option<int?> Subset { get; } = new Option<int?>("--subset")
    { Description = "Use a stratified subset of this many images of the training file, from which a stratified --val-fraction is held out for validation (instead of the file's last part); the same as --train-limit" }
        .InRange(2).WhenAbsent("none");
    public Option<int?> ValEvery { get; } = new Option<int?>("--val-every")
    { Description = "Also measure validation every N training steps within an epoch (for convergence curves)" }.InRange(1).WhenAbsent("at epoch ends only");
    public Option<bool> Probe { get; } = new("--probe")
    { Description = "At every epoch end, record the gradient variance (the paper's d Σlogits/dθ and the loss's) on a fixed training batch into results.json" };
    public Option<double> ValFraction { get; } = new Option<double>("--val-fraction") { Description = "Fraction held out for validation: the last part of the training file, or with --train-limit or --subset a stratified part of the subset", DefaultValueFactory = _ => 0.1 }.InRange(0, 1, minOpen: true, maxOpen: true);
    public Option<int?> ImageSize { get; } = new Option<int?>("--image-size") { Description = "Resize images to N×N" }.InRange(1, MaxImageSize).WhenAbsent("the dataset's native size");
    public Option<bool> PaperResize { get; } = new("--paper-resize") { Description = "Resize to 72×72 as the paper's shallow CNN does" };
    public Option<bool> NoAugment { get; } = new("--no-augment") { Description = "Train without random augmentation" };
    public Option<string> Optimizer { get; } = new("--optimizer") { Description = "adamw (tfa-style decay) or sgd (Nesterov, step schedule)", DefaultValueFactory = _ => "adamw" };
    public Option<double> WeightDecay { get; } = new Option<double>("--weight-decay") { Description = "Decoupled weight decay", DefaultValueFactory = _ => 1e-4 }.InRange(0, 1);
    public Option<string?> InputNorm { get; } = new Option<string?>("--input-norm") { Description = "Norm on the model input (DenseNet), e.g. uan:k=10; a norm spec with the values and ranges of --norm" }
        .WhenAbsent("none");
    public Option<string> OtherNorm { get; } = new("--other-norm")
    {
        Description = "Shallow CNN: norm of conv1, conv3, conv4. The paper's Keras BatchNorm is bn:eps=1e-3,momentum=0.01, whose running " +
                      "averages need hundreds of steps before eval-mode accuracy means anything; short runs use momentum 0.1. A norm spec with the values and ranges of --norm",
        DefaultValueFactory = _ => DefaultOtherNorm,
    };
    public Option<string> Device { get; } = new("--device") { Description = "Torch device: cpu, cuda or cuda:N (when this machine has it)", DefaultValueFactory = _ => "cpu" };
    public Option<int?> Threads { get; } = new Option<int?>("--threads") { Description = "libtorch intra-op threads" }.InRange(1, MaxThreads).WhenAbsent("libtorch's choice");
    public Option<string?> Out { get; } = new("--out", "-o") { Description = "Output folder" };
    public Option<bool> Snapshots { get; } = new("--snapshots")
    { Description = "Save latent-feature snapshots at 25/50/75/100% of the epochs and conv2 activations at the end, for 'uan figures'" };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Dataset, Model, Epochs, BatchSize, TrainLimit, Subset, TestLimit, ValFraction, ValEvery, Probe, ImageSize, PaperResize,
                     NoAugment, Optimizer, WeightDecay, InputNorm, OtherNorm, Device, Threads, Out, Snapshots })
            command.Options.Add(o);
    }

    /// <summary>
    /// The config these options describe (norm, lr and seed are set by the command). Numbers were range-checked by
    /// the parser; names, the device and the norm specs are checked here, before anything is read.
    /// </summary>
    public RunConfig ToConfig(ParseResult p, int defaultEpochs)
    {
        string dataset = p.GetValue(Dataset)!.Trim().ToLowerInvariant();
        if (!DataLocator.KnownIds.Contains(dataset))
            throw new ArgumentException($"unknown dataset '{dataset}'; accepted: {string.Join(", ", DataLocator.KnownIds)}");
        string model = p.GetValue(Model)!.Trim().ToLowerInvariant();
        if (!ModelFactory.Names.Contains(model))
            throw new ArgumentException($"unknown model '{model}'; accepted: {string.Join(", ", ModelFactory.Names)}");
        string optimizer = p.GetValue(Optimizer)!.Trim().ToLowerInvariant();
        if (optimizer is not ("adamw" or "sgd")) throw new ArgumentException($"unknown optimizer '{optimizer}'; accepted: adamw, sgd");
        int epochs = p.GetResult(Epochs) is null ? defaultEpochs : p.GetValue(Epochs);
        int batch = p.GetValue(BatchSize);
        int? size = p.GetValue(PaperResize) ? 72 : p.GetValue(ImageSize);
        if (p.GetValue(PaperResize) && p.GetValue(ImageSize) is int s && s != 72)
            throw new ArgumentException("--paper-resize means 72×72; drop --image-size or --paper-resize");
        // --train-limit N is a subset of N images of the training file with the validation part taken from it, as
        // --subset N. RunConfig.TrainLimit (validation from the whole file, then N training images) is not used: it
        // is what --train-limit meant before, and what the results.json of runs made with it say.
        int? trainLimit = p.GetValue(TrainLimit) is 0 ? null : p.GetValue(TrainLimit);
        if (trainLimit == 1) throw new ArgumentException("--train-limit must be 0 (all images) or at least 2 (training and validation images), got '1'");
        int? subset = p.GetValue(Subset);
        if (subset is not null && trainLimit is not null)
            throw new ArgumentException("--subset and --train-limit exclude each other; give one");
        subset ??= trainLimit;
        double val = p.GetValue(ValFraction);
        Devices.Resolve(p.GetValue(Device)!, "--device");
        string? inputNorm = p.GetValue(InputNorm);
        // std (adaptation only) is refused with its reason by Experiment.CheckModel.
        if (inputNorm is not null && !InputNorms.IsStandardize(inputNorm)) Norms.Parse(inputNorm);
        string? otherNorm = model == "shallow-cnn" ? p.GetValue(OtherNorm) : null;
        if (otherNorm is not null) Norms.Parse(otherNorm);
        return new RunConfig
        {
            Dataset = dataset, Model = model, Epochs = epochs, BatchSize = batch, Subset = subset,
            ValEvery = p.GetValue(ValEvery), Probe = p.GetValue(Probe),
            TestLimit = p.GetValue(TestLimit), ValidationFraction = val, ImageSize = size, Augment = !p.GetValue(NoAugment),
            Optimizer = optimizer, WeightDecay = p.GetValue(WeightDecay), InputNorm = inputNorm, OtherNorm = otherNorm, Device = p.GetValue(Device)!,
            Threads = p.GetValue(Threads), Snapshots = p.GetValue(Snapshots),
        };
    }
}
