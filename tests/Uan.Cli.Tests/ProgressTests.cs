using Spectre.Console;

namespace Uan.Cli.Tests;

public class ProgressTests
{
    /// <summary>Records the thread of every write.</summary>
    private sealed class ThreadRecorder : StringWriter
    {
        public HashSet<int> Threads { get; } = [];
        public override void Write(char value) { lock (Threads) Threads.Add(Environment.CurrentManagedThreadId); base.Write(value); }
        public override void Write(string? value) { lock (Threads) Threads.Add(Environment.CurrentManagedThreadId); base.Write(value); }
        public override void Write(char[] buffer, int index, int count) { lock (Threads) Threads.Add(Environment.CurrentManagedThreadId); base.Write(buffer, index, count); }
    }

    /// <summary>
    /// The live display renders only when the training loop refreshes it, on the loop's thread: Spectre's own refresh
    /// thread (every 100 ms) would render while the loop is inside libtorch.
    /// </summary>
    [Fact]
    public void TheProgressDisplayRendersOnlyOnTheThreadThatRefreshesIt()
    {
        var output = new ThreadRecorder();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes, Interactive = InteractionSupport.Yes, ColorSystem = ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(output),
        });
        int steps = 0;
        Ui.NewProgress(console).Start(ctx =>
        {
            var task = ctx.AddTask("train", maxValue: 30);
            var refresh = new Ui.Throttle(ctx);
            // 30 steps of 20 ms: long enough for several ticks of an automatic refresh.
            for (; steps < 30; steps++)
            {
                Thread.Sleep(20);
                task.Increment(1);
                refresh.Refresh();
            }
        });
        Assert.Equal(30, steps);
        Assert.Equal([Environment.CurrentManagedThreadId], output.Threads);
        Assert.Contains("train", output.ToString());
    }

    /// <summary>Without a terminal a long epoch still shows signs of life: a progress line whenever the last line is old.</summary>
    [Fact]
    public void RedirectedOutputGetsAProgressLineWhenTheLastOneIsOld()
    {
        var o = new StringWriter();
        var ui = new Ui(o, new StringWriter());
        var config = new Uan.Lab.Training.RunConfig { Norm = "bn", Label = "BN", LearningRate = 0.001, Seed = 2, Epochs = 8, BatchSize = 64 };
        var quiet = new Ui.Tracker(ui, null, null);                                   // 30 s: nothing within a test
        var chatty = new Ui.Tracker(ui, null, null) { PlainEvery = TimeSpan.Zero };
        foreach (var tracker in new[] { quiet, chatty })
        {
            tracker.RunStarting(0, config, "new");
            tracker.Report(new Uan.Lab.Training.TrainProgress("train", 2, 8, 100, 282, 0.51234, 0.8126, 160));
            tracker.Report(new Uan.Lab.Training.TrainProgress("val", 2, 8, 10, 32, 0.4, 0.85, 0));
        }
        var lines = o.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("  ")).ToList();
        // (282 − 100) steps · 64 images / 160 images/s = 72.8 s.
        var line = Assert.Single(lines);
        Assert.Equal("  epoch 2/8, step 100/282: loss 0.5123, acc 81.3%, 160 img/s, ends in 0:01:13", line);
    }

    /// <summary>
    /// The grid's time left is known after its first timed step: work is counted in steps of the grid, kept runs take
    /// no time, and the pace is that of the steps this process timed.
    /// </summary>
    [Fact]
    public void TheGridsTimeLeftIsKnownFromTheFirstStep()
    {
        var ui = new Ui(new StringWriter(), new StringWriter());
        var config = new Uan.Lab.Training.RunConfig { Norm = "bn", Epochs = 2, BatchSize = 64 };
        var now = TimeSpan.Zero;
        var tracker = new Ui.Tracker(ui, null, null) { Runs = 3, Elapsed = () => now };
        Assert.Null(tracker.GridRemaining);
        // Run 1 was finished by an earlier process; run 2 starts; each run is 2 epochs of 10 steps: 60 steps in all.
        tracker.RunStarting(0, config, "completed");
        tracker.RunStarting(1, config, "new");
        Assert.Null(tracker.GridRemaining);
        now = TimeSpan.FromSeconds(10);
        tracker.Report(new Uan.Lab.Training.TrainProgress("train", 1, 2, 1, 10, 2.3, 0.1, 6.4));
        // One step in 10 s; 39 steps left (19 of run 2, 20 of run 3).
        Assert.Equal(390, tracker.GridRemaining!.Value.TotalSeconds, 6);
        Assert.Equal(190, tracker.RunRemaining!.Value.TotalSeconds, 6);
        now = TimeSpan.FromSeconds(100);
        tracker.Report(new Uan.Lab.Training.TrainProgress("train", 2, 2, 5, 10, 1.0, 0.6, 6.4));
        // 15 steps in 100 s; 25 left.
        Assert.Equal(100.0 * 25 / 15, tracker.GridRemaining!.Value.TotalSeconds, 6);
        // A resumed run 3 starting at its epoch 2: its first epoch was done earlier and takes no time here.
        tracker.RunStarting(2, config, "resume");
        now = TimeSpan.FromSeconds(130);
        tracker.Report(new Uan.Lab.Training.TrainProgress("train", 2, 2, 5, 10, 1.0, 0.6, 6.4));
        // Timed in this process: run 2 (20 steps, as far as the grid knows) and 5 steps of run 3 in 130 s; 5 left.
        Assert.Equal(130.0 * 5 / 25, tracker.GridRemaining!.Value.TotalSeconds, 6);
    }
}
