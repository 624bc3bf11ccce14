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
        Assert.Equal("  BN lr=0.001 seed=2: epoch 2/8, step 100/282, loss 0.5123, acc 81.3 %, 160 img/s, epoch ends in 00:01:13", line);
    }
}
