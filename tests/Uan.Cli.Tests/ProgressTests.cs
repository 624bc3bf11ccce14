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
}
