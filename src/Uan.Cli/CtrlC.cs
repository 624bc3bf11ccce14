using System.Runtime.InteropServices;

namespace Uan.Cli;

/// <summary>
/// A clean stop on Ctrl-C (SIGINT) or SIGTERM (what schedulers such as Slurm send before they kill): the first one
/// asks the training loop to stop at the next step (results.json, marked "stopped", and the last finished epoch's
/// checkpoint stay, so the run can be resumed); a second one ends the process at once. The command then exits with
/// <see cref="StoppedExitCode"/>: 130 after Ctrl-C, 143 after SIGTERM (128 + the signal number, as shells report).
/// </summary>
internal sealed class CtrlC : IDisposable
{
    /// <summary>Exit code of a run stopped by Ctrl-C.</summary>
    public const int InterruptExitCode = 130;
    /// <summary>Exit code of a run stopped by SIGTERM.</summary>
    public const int TerminateExitCode = 143;

    private readonly CancellationTokenSource _cts = new();
    private readonly Ui _ui;
    private readonly PosixSignalRegistration? _sigterm;
    private int _exitCode = InterruptExitCode;

    public CtrlC(Ui ui)
    {
        _ui = ui;
        Console.CancelKeyPress += OnCancel;
        // POSIX only: on Windows .NET maps SIGTERM to console shutdown events, which are not a scheduler's request to stop.
        if (!OperatingSystem.IsWindows()) _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnTerminate);
    }

    public CancellationToken Token => _cts.Token;

    /// <summary>The exit code of a stopped run: which signal asked for the stop.</summary>
    public int StoppedExitCode => _exitCode;

    private void OnCancel(object? sender, ConsoleCancelEventArgs e)
    {
        if (_cts.IsCancellationRequested) return;
        e.Cancel = true;
        Stop(InterruptExitCode, "press Ctrl-C again to quit now");
    }

    private void OnTerminate(PosixSignalContext context)
    {
        // A second SIGTERM gets the runtime's default: the process ends.
        if (_cts.IsCancellationRequested) return;
        context.Cancel = true;
        Stop(TerminateExitCode, "SIGTERM again quits now");
    }

    private void Stop(int exitCode, string again)
    {
        _exitCode = exitCode;
        _cts.Cancel();
        _ui.Err.WriteLine($"uan: stopping after the current step; finished epochs are saved ({again})");
    }

    public void Dispose()
    {
        _sigterm?.Dispose();
        Console.CancelKeyPress -= OnCancel;
        _cts.Dispose();
    }
}
