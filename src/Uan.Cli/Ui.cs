using System.Globalization;
using Spectre.Console;
using Uan.Lab.Training;

namespace Uan.Cli;

/// <summary>
/// Console output of the command: progress bars with ETA on a terminal, one plain line per epoch otherwise (CI, pipes,
/// <c>--plain</c>), nothing but results and errors with <c>--quiet</c>.
/// </summary>
internal sealed class Ui(TextWriter output, TextWriter error)
{
    public TextWriter Out { get; } = output;
    public TextWriter Err { get; } = error;
    public bool Quiet { get; private set; }
    public bool Interactive { get; private set; }

    public void Configure(bool quiet, bool plain)
    {
        Quiet = quiet;
        Interactive = !quiet && !plain && ReferenceEquals(Out, Console.Out) && !Console.IsOutputRedirected
                      && AnsiConsole.Profile.Capabilities.Interactive;
    }

    public void Info(string line)
    {
        if (!Quiet) Out.WriteLine(line);
    }

    public void Result(string text) => Out.WriteLine(text);

    public void Error(string message) => Err.WriteLine($"uan: {message}");

    /// <summary>The split a run trains on: "train N, validation M (fraction f of the training set), test T images".</summary>
    public static string SplitLine(ExperimentData data, RunConfig c) => string.Create(CultureInfo.InvariantCulture,
        $"train {data.Train.Count}, validation {data.Validation.Count} (fraction {c.ValidationFraction} of the training set), test {data.Test.Count} images");

    public static string Describe(RunConfig c) =>
        $"{c.Label ?? c.Norm} lr={c.LearningRate.ToString(CultureInfo.InvariantCulture)} seed={c.Seed}";

    public static string EpochLine(RunConfig c, EpochMetrics m) => string.Create(CultureInfo.InvariantCulture,
        $"[{Describe(c)}] epoch {m.Epoch}/{c.Epochs}  train loss {m.TrainLoss:F4} acc {m.TrainAccuracy:P2}  " +
        $"val {m.ValAccuracy:P2}  test {m.TestAccuracy:P2} (top-5 {m.TestTop5:P2}, F1 {m.TestF1:P2})  " +
        $"{m.TrainSeconds + m.EvalSeconds:F0} s, {m.ImagesPerSecond:F0} img/s{(m.IsBest ? "  *best" : "")}");

    /// <summary>
    /// Runs <paramref name="body"/> with a progress sink: on a terminal a Spectre progress display (one bar for the
    /// grid, one for the current run, with ETA, loss and accuracy); otherwise no per-step output.
    /// </summary>
    public T WithProgress<T>(int runs, Func<Tracker, T> body)
    {
        if (!Interactive) return body(new Tracker(this, null, null));
        T result = default!;
        NewProgress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 16 }, new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var grid = runs > 1 ? ctx.AddTask($"runs 0/{runs}", maxValue: runs) : null;
                result = body(new Tracker(this, ctx, grid));
            });
        return result;
    }

    /// <summary>
    /// A Spectre progress display that redraws only when the caller refreshes it. Its default refresh thread renders
    /// (and allocates) while the training thread is inside libtorch, which makes TorchSharp's finalizer race more
    /// likely; <see cref="Throttle"/> paces the refreshes the training loop makes between steps instead.
    /// </summary>
    internal static Progress NewProgress(IAnsiConsole? console = null) => new Progress(console ?? AnsiConsole.Console).AutoRefresh(false);

    /// <summary>Refreshes a progress display at most ten times a second, on the calling thread.</summary>
    internal sealed class Throttle(ProgressContext ctx)
    {
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        private TimeSpan _last = TimeSpan.FromSeconds(-1);

        public void Refresh(bool now = false)
        {
            var elapsed = _clock.Elapsed;
            if (!now && elapsed - _last < TimeSpan.FromMilliseconds(100)) return;
            _last = elapsed;
            ctx.Refresh();
        }
    }

    /// <summary>Receives training progress and epoch results and shows them.</summary>
    internal sealed class Tracker(Ui ui, ProgressContext? ctx, ProgressTask? grid) : IProgress<TrainProgress>
    {
        private ProgressTask? _run;
        private RunConfig? _config;
        private readonly Throttle? _refresh = ctx is null ? null : new Throttle(ctx);
        private readonly System.Diagnostics.Stopwatch _sinceLine = System.Diagnostics.Stopwatch.StartNew();

        /// <summary>
        /// Without a terminal (redirected output, CI, a scheduler's log): the longest silence during training before
        /// a progress line is printed.
        /// </summary>
        public TimeSpan PlainEvery { get; init; } = TimeSpan.FromSeconds(30);

        public void RunStarting(int index, RunConfig config, string state)
        {
            _config = config;
            SetGrid(index);
            string what = state switch
            {
                "completed" => "already completed, kept", "diverged" => "diverged earlier, kept", "new" => "starting",
                _ when state.StartsWith("held", StringComparison.Ordinal) => $"{state}, skipped",
                _ => $"resuming ({state})",
            };
            if (ctx is null) ui.Info($"run {index + 1}: {Describe(config)} — {what}");
            else
            {
                _run?.StopTask();
                _run = ctx.AddTask(Markup.Escape($"{Describe(config)}"), maxValue: config.Epochs);
                if (state is "completed" or "diverged") { _run.Value = config.Epochs; _run.StopTask(); }
                else if (state.StartsWith("held", StringComparison.Ordinal))
                {
                    _run.Description = Markup.Escape($"{Describe(config)}: {what}");
                    _run.StopTask();
                }
                _refresh!.Refresh(now: true);
            }
        }

        public void GridFinished(int runs)
        {
            SetGrid(runs);
            _run?.StopTask();
            _refresh?.Refresh(now: true);
        }

        private void SetGrid(int done)
        {
            if (grid is null) return;
            grid.Value = done;
            grid.Description = $"runs {done}/{grid.MaxValue}";
        }

        public void RunFinished(RunResults results)
        {
            _run?.StopTask();
        }

        public void Epoch(RunConfig config, EpochMetrics m)
        {
            _sinceLine.Restart();
            if (ui.Quiet) return;
            if (ctx is null) ui.Out.WriteLine(EpochLine(config, m));
            else
            {
                AnsiConsole.MarkupLine(Markup.Escape(EpochLine(config, m)));
                _refresh!.Refresh(now: true);
            }
        }

        public void Report(TrainProgress p)
        {
            if (ctx is null)
            {
                if (ui.Quiet || p.Phase != "train" || _config is null || _sinceLine.Elapsed < PlainEvery) return;
                _sinceLine.Restart();
                double left = p.ImagesPerSecond > 0 ? (p.Steps - p.Step) * (double)_config.BatchSize / p.ImagesPerSecond : double.NaN;
                ui.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {Describe(_config)}: epoch {p.Epoch}/{p.Epochs}, step {p.Step}/{p.Steps}, loss {p.Loss:F4}, " +
                    $"acc {p.Accuracy:P1}, {p.ImagesPerSecond:F0} img/s, epoch ends in {(double.IsFinite(left) ? TimeSpan.FromSeconds(Math.Round(left)).ToString() : "?")}"));
                return;
            }
            if (_run is null || p.Phase != "train") return;
            _run.Value = p.Epoch - 1 + (double)p.Step / p.Steps;
            _run.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"{_config!.Label ?? _config.Norm} s{_config.Seed} e{p.Epoch}/{p.Epochs} loss {p.Loss:F3} acc {p.Accuracy:P0} {p.ImagesPerSecond:F0}/s"));
            _refresh?.Refresh();
        }
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread, in order (Progress&lt;T&gt; posts to the pool).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
