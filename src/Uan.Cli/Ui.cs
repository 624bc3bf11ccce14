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

    /// <summary><see cref="Info"/> wrapped at spaces to 80 columns, continuation lines indented.</summary>
    public void InfoWrapped(string text)
    {
        bool first = true;
        foreach (var line in HelpText.Wrap(text, 76))
        {
            Info(first ? line : "  " + line);
            first = false;
        }
    }

    public void Error(string message) => Err.WriteLine($"uan: {message}");

    /// <summary>The split a run trains on: "train N, validation M (fraction f of the training set), test T images".</summary>
    public static string SplitLine(ExperimentData data, RunConfig c) => string.Create(CultureInfo.InvariantCulture,
        $"train {data.Train.Count}, validation {data.Validation.Count} (fraction {c.ValidationFraction} of the training set), test {data.Test.Count} images");

    public static string Describe(RunConfig c) =>
        $"{c.Label ?? c.Norm} lr={c.LearningRate.ToString(CultureInfo.InvariantCulture)} seed={c.Seed}";

    /// <summary>
    /// An epoch's result in two lines that fit 80 columns (a log or a terminal wraps longer ones): the run, the epoch,
    /// its time; then the training loss and accuracy and the validation and test accuracies.
    /// </summary>
    public static string EpochLine(RunConfig c, EpochMetrics m) => string.Create(CultureInfo.InvariantCulture,
        $"[{Describe(c)}] epoch {m.Epoch}/{c.Epochs}: {m.TrainSeconds + m.EvalSeconds:F0} s, {m.ImagesPerSecond:F0} img/s{(m.IsBest ? ", best validation" : "")}{Environment.NewLine}" +
        $"  loss {m.TrainLoss:F4}, train {Percent(m.TrainAccuracy)}, val {Percent(m.ValAccuracy)}, " +
        $"test {Percent(m.TestAccuracy)}, top-5 {Percent(m.TestTop5)}, F1 {Percent(m.TestF1)}");

    /// <summary>A fraction as a percentage with two decimals and no space ("97.25%"); exactly 1 as "100%".</summary>
    public static string Percent(double v) =>
        v >= 1 ? "100%" : double.IsFinite(v) ? (v * 100).ToString("F2", CultureInfo.InvariantCulture) + "%" : "n/a";

    /// <summary>The plain progress line: epoch, step, running loss and accuracy, speed and the time left in the epoch.</summary>
    public static string ProgressLine(TrainProgress p, int batchSize)
    {
        double left = p.ImagesPerSecond > 0 ? (p.Steps - p.Step) * (double)batchSize / p.ImagesPerSecond : double.NaN;
        return string.Create(CultureInfo.InvariantCulture,
            $"  epoch {p.Epoch}/{p.Epochs}, step {p.Step}/{p.Steps}: loss {p.Loss:F4}, acc {p.Accuracy * 100:F1}%, {p.ImagesPerSecond:F0} img/s, " +
            $"ends in {(double.IsFinite(left) ? Clock(TimeSpan.FromSeconds(Math.Round(left))) : "?")}");
    }

    /// <summary>h:mm:ss.</summary>
    public static string Clock(TimeSpan t) => string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}");

    /// <summary>
    /// Time left when <paramref name="done"/> units of work took <paramref name="elapsed"/> and <paramref name="left"/>
    /// units remain, at the same pace; null before any work is done.
    /// </summary>
    public static TimeSpan? Remaining(TimeSpan elapsed, double done, double left) =>
        done > 0 && left >= 0 && double.IsFinite(done) ? TimeSpan.FromSeconds(elapsed.TotalSeconds * left / done) : null;

    /// <summary>
    /// Runs <paramref name="body"/> with a progress sink: on a terminal a Spectre progress display (one bar for the
    /// grid, one for the current run, with ETA, loss and accuracy); otherwise no per-step output.
    /// </summary>
    public T WithProgress<T>(int runs, Func<Tracker, T> body)
    {
        if (!Interactive) return body(new Tracker(this, null, null) { Runs = runs });
        T result = default!;
        Tracker? tracker = null;
        NewProgress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 16 }, new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingColumn(task => tracker?.RemainingFor(task)), new SpinnerColumn())
            .Start(ctx =>
            {
                var grid = runs > 1 ? ctx.AddTask($"runs 0/{runs}", maxValue: runs) : null;
                tracker = new Tracker(this, ctx, grid) { Runs = runs };
                result = body(tracker);
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

    /// <summary>
    /// Time left of a task as the tracker estimates it (Spectre's own estimate, from the recent change of a task's
    /// value, has nothing to go on while a grid's value moves once per finished run).
    /// </summary>
    internal sealed class RemainingColumn(Func<ProgressTask, TimeSpan?> remaining) : ProgressColumn
    {
        protected override bool NoWrap => true;

        public override Spectre.Console.Rendering.IRenderable Render(Spectre.Console.Rendering.RenderOptions options, ProgressTask task, TimeSpan deltaTime)
        {
            if (task.IsFinished) return new Text("00:00:00", new Style(Color.Blue));
            if ((remaining(task) ?? task.RemainingTime) is not TimeSpan t) return new Text("--:--:--", new Style(Color.Blue));
            return new Text(t.TotalHours >= 100 ? "**:**:**" : $"{(int)t.TotalHours:00}:{t.Minutes:00}:{t.Seconds:00}", new Style(Color.Blue));
        }
    }

    /// <summary>Receives training progress and epoch results and shows them.</summary>
    internal sealed class Tracker(Ui ui, ProgressContext? ctx, ProgressTask? grid) : IProgress<TrainProgress>
    {
        private ProgressTask? _run;
        private RunConfig? _config;
        private int _index;
        // Work is counted in runs (a run's epochs and steps as fractions of it), from the first run this process trains.
        private readonly System.Diagnostics.Stopwatch _clock = new();
        private double _start = double.NaN, _runStart = double.NaN, _skipped;
        private TimeSpan _runClockStart;

        /// <summary>Runs of the grid (1 for train).</summary>
        public int Runs { get; init; } = 1;

        /// <summary>Time since the first training step of this process began (tests replace it).</summary>
        public Func<TimeSpan>? Elapsed { get; init; }

        private TimeSpan Now => Elapsed?.Invoke() ?? _clock.Elapsed;

        /// <summary>Runs done, with the current run's finished part as a fraction.</summary>
        public double Progress { get; private set; }

        /// <summary>
        /// Time left for the whole grid at the pace of the work done so far in this process (runs kept from earlier
        /// processes take no time); null until a first step has been timed.
        /// </summary>
        public TimeSpan? GridRemaining => double.IsNaN(_start) ? null : Remaining(Now, Progress - _start - _skipped, Runs - Progress);

        /// <summary>Time left for the current run, at its own pace.</summary>
        public TimeSpan? RunRemaining => double.IsNaN(_runStart) ? null
            : Remaining(Now - _runClockStart, Progress - _runStart, _index + 1 - Progress);

        internal TimeSpan? RemainingFor(ProgressTask task) =>
            ReferenceEquals(task, grid) ? GridRemaining : ReferenceEquals(task, _run) ? RunRemaining : null;
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
            _index = index;
            _runStart = double.NaN;
            bool kept = state is "completed" or "diverged" || state.StartsWith("held", StringComparison.Ordinal);
            // A run kept or skipped after training began moves the grid on without taking time.
            if (kept && !double.IsNaN(_start)) _skipped += index + 1 - Math.Max(Progress, index);
            Progress = kept ? index + 1 : index;
            if (!kept)
            {
                _clock.Start();
                _runClockStart = Now;
            }
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
            if (p.Phase == "train" && p.Steps > 0 && p.Epochs > 0)
            {
                // The clocks started when the run did; its first step report says where in the run it started (a
                // resumed run starts at an epoch boundary), so one timed step is enough for an estimate.
                if (double.IsNaN(_runStart))
                {
                    _runStart = _index + (p.Epoch - 1.0) / p.Epochs;
                    // The epochs a resumed run finished in an earlier process took no time here.
                    if (double.IsNaN(_start)) _start = _runStart;
                    else _skipped += _runStart - Progress;
                }
                Progress = _index + (p.Epoch - 1 + (double)p.Step / p.Steps) / p.Epochs;
            }
            if (ctx is null)
            {
                if (ui.Quiet || p.Phase != "train" || _config is null || _sinceLine.Elapsed < PlainEvery) return;
                _sinceLine.Restart();
                ui.Out.WriteLine(ProgressLine(p, _config.BatchSize));
                return;
            }
            if (grid is not null) grid.Value = Math.Min(Progress, grid.MaxValue);
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
