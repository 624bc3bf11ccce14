namespace Uan.Cli;

/// <summary>
/// First Ctrl-C asks the training loop to stop at the next step (results.json and the last epoch's checkpoint stay,
/// so the run can be resumed); a second one ends the process at once.
/// </summary>
internal sealed class CtrlC : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly Ui _ui;

    public CtrlC(Ui ui)
    {
        _ui = ui;
        Console.CancelKeyPress += OnCancel;
    }

    public CancellationToken Token => _cts.Token;

    private void OnCancel(object? sender, ConsoleCancelEventArgs e)
    {
        if (_cts.IsCancellationRequested) return;
        e.Cancel = true;
        _cts.Cancel();
        _ui.Err.WriteLine("uan: stopping after the current step; finished epochs are saved (press Ctrl-C again to quit now)");
    }

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancel;
        _cts.Dispose();
    }
}
