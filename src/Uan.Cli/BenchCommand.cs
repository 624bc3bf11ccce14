using System.CommandLine;
using System.Globalization;
using TorchSharp;
using Uan.Lab.Performance;

namespace Uan.Cli;

/// <summary>
/// <c>uan bench</c>: a quick speed check of the norms against BatchNorm2d (ratios measured in the same run) and of a
/// shallow-CNN training step with UAN at conv2 against BN. The BenchmarkDotNet suite under bench/ is the thorough one.
/// </summary>
internal static class BenchCommand
{
    public static Command Create(Ui ui)
    {
        var shapes = new Option<string[]>("--shape")
        {
            Description = "Input shapes NxCxHxW (or NxC); repeat for several",
            DefaultValueFactory = _ => ["64x128x32x32"],
            AllowMultipleArgumentsPerToken = true,
        };
        var k = new Option<int>("--k") { Description = "Mixture components of UAN and MN", DefaultValueFactory = _ => 3 }.InRange(1, 16);
        var repeats = new Option<int>("--repeats") { Description = "Timed repeats per layer (median reported)", DefaultValueFactory = _ => 5 }.InRange(1, 10_000);
        var referenceRepeats = new Option<int>("--reference-repeats")
        { Description = "Repeats on the tensor-op path, tens of times slower (0 skips it)", DefaultValueFactory = _ => 1 }.InRange(0, 10_000);
        var forwardOnly = new Option<bool>("--forward-only") { Description = "Time the forward pass only (no_grad)" };
        var noStep = new Option<bool>("--no-step") { Description = "Skip the shallow-CNN training-step comparison" };
        var stepRepeats = new Option<int>("--step-repeats") { Description = "Timed training steps per norm (median reported)", DefaultValueFactory = _ => 7 }.InRange(1, 10_000);
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads" }.InRange(1, RunOptions.MaxThreads).WhenAbsent("libtorch's choice");
        var leaf = new Option<bool>("--leaf-input")
        { Description = "Feed each layer a leaf tensor instead of a view of one (autograd then copies the gradient of custom C# nodes once more, which layers inside a network never pay)" };
        var outFile = new Option<string?>("--out", "-o") { Description = "Also write the tables as Markdown to this file" }.WhenAbsent("printed only");
        var command = new Command("bench", "Quick speed check: each norm's time as a ratio to BatchNorm2d measured in the same run, and a training step with UAN vs BN.");
        foreach (var o in new Option[] { shapes, k, repeats, referenceRepeats, forwardOnly, noStep, stepRepeats, threads, leaf, outFile })
            command.Options.Add(o);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            int kv = p.GetValue(k);
            var parsedShapes = p.GetValue(shapes)!.Select(SpeedCheck.ParseShape).ToArray();
            // The table is written after minutes of timing: a folder that cannot take it must fail now.
            using var folder = p.GetValue(outFile) is string target
                ? OutputFolder.Claim(Path.GetDirectoryName(Path.GetFullPath(target))!, "--out")
                : null;
            if (p.GetValue(outFile) is string file && Directory.Exists(file))
                throw new ArgumentException($"--out: {file} is a folder; give a file name for the Markdown table");
            if (p.GetValue(threads) is int t) torch.set_num_threads(t);
            var progress = new SyncProgress<string>(ui.Info);
            var md = new System.Text.StringBuilder();
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"torch threads {torch.get_num_threads()}, {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}; median of {p.GetValue(repeats)} (tensor-op path: {p.GetValue(referenceRepeats)}); ratio = time / BatchNorm2d time measured around it (BatchNorm's own row: the median of those before-and-after means over all the shape's layers); input: {(p.GetValue(leaf) ? "a leaf tensor (--leaf-input)" : "a view of a leaf tensor, as inside a network")}."));
            md.AppendLine();
            md.AppendLine(AllocatorNote());
            md.AppendLine();
            var rows = new List<SpeedRow>();
            foreach (var shape in parsedShapes)
                rows.AddRange(SpeedCheck.MeasureNorms(shape, SpeedCheck.DefaultCases(shape[1], kv), !p.GetValue(forwardOnly),
                    p.GetValue(repeats), p.GetValue(referenceRepeats), memory: false, progress: progress, leafInput: p.GetValue(leaf)));
            List<StepRow>? steps = null;
            if (!p.GetValue(noStep))
                steps = SpeedCheck.MeasureShallowCnnStep(
                    [$"uan:k={kv}", $"uan:k={kv},mode=batchstats", $"mn:k={kv}"], repeats: p.GetValue(stepRepeats),
                    warmup: 1, progress: progress);
            // Memory last: measuring it changes the allocator's behaviour for the rest of the process.
            progress.Report("memory kept for backward");
            rows = SpeedCheck.AddMemory(rows, parsedShapes.SelectMany(s => SpeedCheck.DefaultCases(s[1], kv)).DistinctBy(c => (c.Name, c.Fused)));
            md.AppendLine(SpeedTable.Norms(rows));
            if (steps is not null) md.AppendLine(SpeedTable.Steps(steps));
            ui.Result(md.ToString());
            if (p.GetValue(outFile) is string path)
            {
                string full = Path.GetFullPath(path);
                Uan.Lab.AtomicFile.WriteAllText(full, md.ToString());
                ui.Result($"written: {full}");
            }
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// Which allocation regime the timings ran in. glibc maps every allocation above its mmap threshold afresh, and the
    /// threshold adapts only up to 32 MiB: larger tensors (a [64, 128, 32, 32] float32 tensor is exactly 32 MiB) then
    /// pay page faults on every allocation, for BatchNorm and UAN alike, and those dominate both times.
    /// <c>MALLOC_MMAP_THRESHOLD_</c> set at start-up keeps them on the reusable heap; <c>MALLOC_ARENA_MAX=1</c> keeps
    /// allocations made on other threads there too (glibc's per-thread arenas grow in heaps of at most 64 MiB that are
    /// mapped and unmapped as they fill and empty).
    /// </summary>
    internal static string AllocatorNote()
    {
        string? threshold = Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_");
        if (!OperatingSystem.IsLinux()) return "Allocator: the platform's default.";
        string? arenas = Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX");
        if (threshold is null)
            return "Allocator: glibc defaults (tensors of 32 MiB or more are mapped afresh on every allocation, so page faults weigh on every layer; set MALLOC_ARENA_MAX=1, MALLOC_MMAP_THRESHOLD_=4294967296 and MALLOC_TRIM_THRESHOLD_=4294967296 to time the layers on a warm heap).";
        string trim = Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") ?? "default (freed heap tops go back to the OS: set it too)";
        return arenas is null
            ? $"Allocator: glibc with MALLOC_MMAP_THRESHOLD_={threshold}, MALLOC_TRIM_THRESHOLD_={trim}: large tensors reuse heap memory, so the timings are the layers' own work; MALLOC_ARENA_MAX is unset, so allocations made on other threads still go to per-thread arenas of at most 64 MiB that are mapped and unmapped again (MALLOC_ARENA_MAX=1 keeps them on the one heap)."
            : $"Allocator: glibc with MALLOC_MMAP_THRESHOLD_={threshold}, MALLOC_TRIM_THRESHOLD_={trim}, MALLOC_ARENA_MAX={arenas}: large tensors reuse heap memory, so the timings are the layers' own work.";
    }
}
