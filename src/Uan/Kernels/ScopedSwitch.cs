namespace Uan.Kernels;

/// <summary>
/// A process-wide boolean setting with a scoped override for the current thread / async flow: the kernels' on/off
/// switch (<see cref="UanKernels"/>) and their vector width (<see cref="Simd"/>). An override does not leak into
/// code running concurrently (parallel tests, benchmarks comparing both settings).
/// </summary>
internal sealed class ScopedSwitch(bool initial)
{
    readonly AsyncLocal<bool?> _override = new();

    /// <summary>The process-wide value, in effect wherever no <see cref="Use"/> scope is open.</summary>
    public bool Default { get; set; } = initial;

    /// <summary>The value for the current async flow: its innermost override, else <see cref="Default"/>.</summary>
    public bool Value => _override.Value ?? Default;

    /// <summary>Overrides the value for the current async flow until the returned scope is disposed.</summary>
    public IDisposable Use(bool value)
    {
        var previous = _override.Value;
        _override.Value = value;
        return new Restore(this, previous);
    }

    sealed class Restore(ScopedSwitch owner, bool? previous) : IDisposable
    {
        bool _done;

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            owner._override.Value = previous;
        }
    }
}
