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

    public Option<string> Dataset { get; } = new("--dataset", "-d")
    { Description = $"Dataset: {string.Join(", ", DataLocator.KnownIds)}", DefaultValueFactory = _ => "mnist-subset" };
    public Option<string> Model { get; } = new("--model", "-m")
    { Description = "Model: shallow-cnn, densenet40, densenet100, wrn-16-2, wrn-28-2", DefaultValueFactory = _ => "shallow-cnn" };
    public Option<int> Epochs { get; } = new("--epochs", "-e") { Description = "Training epochs" };
    public Option<int> BatchSize { get; } = new("--batch-size", "-b") { Description = "Batch size (the paper: 256)", DefaultValueFactory = _ => defaultBatch };
    public Option<int?> TrainLimit { get; } = new("--train-limit")
    {
        Description = "Use a stratified subset of this many training images" + (defaultTrainLimit is int d and > 0 ? $" (default {d}; 0 = all)" : " (0 = all, the default)"),
        DefaultValueFactory = _ => defaultTrainLimit,
    };
    public Option<int?> TestLimit { get; } = new("--test-limit") { Description = "Use a stratified subset of this many test images" };
    public Option<double> ValFraction { get; } = new("--val-fraction") { Description = "Last fraction of the training file held out for validation", DefaultValueFactory = _ => 0.1 };
    public Option<int?> ImageSize { get; } = new("--image-size") { Description = "Resize images to N×N (default: native size)" };
    public Option<bool> PaperResize { get; } = new("--paper-resize") { Description = "Resize to 72×72 as the paper's shallow CNN does" };
    public Option<bool> NoAugment { get; } = new("--no-augment") { Description = "Train without random augmentation" };
    public Option<string> Optimizer { get; } = new("--optimizer") { Description = "adamw (tfa-style decay) or sgd (Nesterov, step schedule)", DefaultValueFactory = _ => "adamw" };
    public Option<double> WeightDecay { get; } = new("--weight-decay") { Description = "Decoupled weight decay", DefaultValueFactory = _ => 1e-4 };
    public Option<string?> InputNorm { get; } = new("--input-norm") { Description = "Norm on the model input (DenseNet), e.g. uan:k=10" };
    public Option<string> OtherNorm { get; } = new("--other-norm")
    {
        Description = "Shallow CNN: norm of conv1, conv3, conv4. The paper's Keras BatchNorm is bn:eps=1e-3,momentum=0.01, whose running " +
                      "averages need hundreds of steps before eval-mode accuracy means anything; short runs use momentum 0.1",
        DefaultValueFactory = _ => DefaultOtherNorm,
    };
    public Option<string> Device { get; } = new("--device") { Description = "Torch device", DefaultValueFactory = _ => "cpu" };
    public Option<int?> Threads { get; } = new("--threads") { Description = "libtorch intra-op threads (default: libtorch's choice)" };
    public Option<string?> Out { get; } = new("--out", "-o") { Description = "Output folder" };
    public Option<bool> Snapshots { get; } = new("--snapshots")
    { Description = "Save latent-feature snapshots at 25/50/75/100% of the epochs and conv2 activations at the end, for 'uan figures'" };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Dataset, Model, Epochs, BatchSize, TrainLimit, TestLimit, ValFraction, ImageSize, PaperResize,
                     NoAugment, Optimizer, WeightDecay, InputNorm, OtherNorm, Device, Threads, Out, Snapshots })
            command.Options.Add(o);
    }

    /// <summary>The config these options describe (norm, lr and seed are set by the command).</summary>
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
        if (epochs <= 0) throw new ArgumentException($"--epochs must be positive, got {epochs}");
        int batch = p.GetValue(BatchSize);
        if (batch <= 0) throw new ArgumentException($"--batch-size must be positive, got {batch}");
        int? size = p.GetValue(PaperResize) ? 72 : p.GetValue(ImageSize);
        if (p.GetValue(PaperResize) && p.GetValue(ImageSize) is int s && s != 72)
            throw new ArgumentException("--paper-resize means 72×72; drop --image-size or --paper-resize");
        if (size is <= 0) throw new ArgumentException($"--image-size must be positive, got {size}");
        int? trainLimit = p.GetValue(TrainLimit) is 0 ? null : p.GetValue(TrainLimit);
        if (trainLimit is < 0) throw new ArgumentException("--train-limit must be positive (0 = all)");
        if (p.GetValue(TestLimit) is <= 0) throw new ArgumentException("--test-limit must be positive");
        double val = p.GetValue(ValFraction);
        if (val is <= 0 or >= 1) throw new ArgumentException($"--val-fraction must be in (0, 1), got {val}");
        if (p.GetValue(Threads) is <= 0) throw new ArgumentException("--threads must be positive");
        string? inputNorm = p.GetValue(InputNorm);
        if (inputNorm is not null) Norms.Parse(inputNorm);
        string? otherNorm = model == "shallow-cnn" ? p.GetValue(OtherNorm) : null;
        if (otherNorm is not null) Norms.Parse(otherNorm);
        return new RunConfig
        {
            Dataset = dataset, Model = model, Epochs = epochs, BatchSize = batch, TrainLimit = trainLimit,
            TestLimit = p.GetValue(TestLimit), ValidationFraction = val, ImageSize = size, Augment = !p.GetValue(NoAugment),
            Optimizer = optimizer, WeightDecay = p.GetValue(WeightDecay), InputNorm = inputNorm, OtherNorm = otherNorm, Device = p.GetValue(Device)!,
            Threads = p.GetValue(Threads), Snapshots = p.GetValue(Snapshots),
        };
    }
}
