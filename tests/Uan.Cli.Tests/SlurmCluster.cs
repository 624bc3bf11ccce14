using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Uan.Cli.Tests;

/// <summary>
/// A real single-node Slurm cluster for one test: munged, slurmctld and slurmd from the distribution's packages
/// (installed with apt-get when absent), configured in a private folder and reached through SLURM_CONF, so no
/// machine-wide configuration file is written. The node has the machine's CPUs, scheduled one by one (cons_tres,
/// CR_CPU), no accounting, no cgroups. Jobs run as the caller (root). Everything started here is stopped on
/// <see cref="Dispose"/> by the pids in its pid files, never by name.
/// </summary>
internal sealed class SlurmCluster : IDisposable
{
    /// <summary>The machine-wide ports of a Slurm cluster: slurmctld's and slurmd's.</summary>
    public const int ControllerPort = 6817, NodePort = 6818;

    private readonly List<string> _log = [];
    private string? _mungePidFile;     // set when this cluster started munged
    private bool _disposed;

    private SlurmCluster(string dir)
    {
        Dir = dir;
        ConfPath = Path.Combine(dir, "slurm.conf");
    }

    /// <summary>The cluster's private folder: configuration, state, spool, daemon logs.</summary>
    public string Dir { get; }
    /// <summary>The configuration file; every Slurm command of the test gets it through SLURM_CONF.</summary>
    public string ConfPath { get; }
    /// <summary>What happened while starting and stopping, for failure messages.</summary>
    public string Log => string.Join("\n", _log);

    [DllImport("libc")]
    private static extern uint geteuid();

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    /// <summary>Why a cluster cannot be started here (not Linux, not root), or null when it can.</summary>
    public static string? WhyNot() =>
        !OperatingSystem.IsLinux() ? "a Slurm cluster needs Linux"
        : geteuid() != 0 ? "starting a Slurm cluster (apt-get install, munged, slurmctld, slurmd) needs root; run the tests as root to include it"
        : null;

    /// <summary>
    /// Installs the packages if absent, starts munged (unless one already serves the default socket), slurmctld and
    /// slurmd, and waits until the node is idle. Throws with the daemons' logs when any step fails.
    /// </summary>
    public static SlurmCluster Start(string dir)
    {
        if (WhyNot() is { } why) throw new InvalidOperationException(why);
        Directory.CreateDirectory(Path.Combine(dir, "log"));
        var cluster = new SlurmCluster(dir);
        try
        {
            cluster.Install();
            cluster.CheckPortsFree();
            cluster.StartMunge();
            cluster.WriteConf();
            cluster.StartDaemon("slurmctld", "slurmctld.pid");
            cluster.StartDaemon("slurmd", "slurmd.pid");
            cluster.WaitIdle(TimeSpan.FromSeconds(60));
            return cluster;
        }
        catch (Exception e)
        {
            string log = cluster.Log + "\n" + cluster.DaemonLogs();
            cluster.Dispose();
            throw new InvalidOperationException($"could not start a Slurm cluster: {e.Message}\n{log}", e);
        }
    }

    /// <summary>Runs a Slurm client (sbatch, squeue, scancel, scontrol) against this cluster; returns exit code and output.</summary>
    public (int Code, string Out, string Err) Client(string program, params string[] args) => Run(program, args, TimeSpan.FromSeconds(60), Environment());

    /// <summary>The environment a process needs to reach this cluster.</summary>
    public Dictionary<string, string> Environment() => new() { ["SLURM_CONF"] = ConfPath };

    /// <summary>The job ids (array tasks as JOB_TASK) squeue shows, with their state code.</summary>
    public IReadOnlyList<(string Id, string State)> Queue()
    {
        var (code, output, err) = Client("squeue", "-h", "-o", "%i %t");
        if (code != 0) throw new InvalidOperationException($"squeue failed: {err}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split(' ', 2)).Select(p => (p[0], p.Length > 1 ? p[1] : "")).ToList();
    }

    private void Install()
    {
        string[] programs = ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "munged"];
        if (programs.All(p => Which(p) is not null)) return;
        var first = Run("apt-get", ["install", "-y", "slurmctld", "slurmd", "slurm-client", "munge"], TimeSpan.FromMinutes(5), AptEnvironment());
        _log.Add($"apt-get install: exit {first.Code}");
        if (first.Code != 0)
        {
            var update = Run("apt-get", ["update"], TimeSpan.FromMinutes(5), AptEnvironment());
            _log.Add($"apt-get update: exit {update.Code}");
            var second = Run("apt-get", ["install", "-y", "slurmctld", "slurmd", "slurm-client", "munge"], TimeSpan.FromMinutes(5), AptEnvironment());
            if (second.Code != 0)
                throw new InvalidOperationException($"apt-get install -y slurmctld slurmd slurm-client munge failed (exit {second.Code}), " +
                                                    $"also after apt-get update (exit {update.Code}): {Tail(second.Err + second.Out)}");
        }
        var missing = programs.Where(p => Which(p) is null).ToArray();
        if (missing.Length > 0) throw new InvalidOperationException($"installed, but not on PATH: {string.Join(", ", missing)}");
    }

    private static Dictionary<string, string> AptEnvironment() => new() { ["DEBIAN_FRONTEND"] = "noninteractive" };

    private void CheckPortsFree()
    {
        foreach (int port in new[] { ControllerPort, NodePort })
        {
            try
            {
                using var listener = new TcpListener(IPAddress.Any, port);
                listener.Start();
                listener.Stop();
            }
            catch (SocketException e)
            {
                throw new InvalidOperationException($"port {port} is in use ({e.SocketErrorCode}): another Slurm cluster (or another program) " +
                                                    "runs on this machine; this test brings up its own and will not share one");
            }
        }
    }

    private void StartMunge()
    {
        const string runDir = "/run/munge", pidFile = "/run/munge/munged.pid", socket = "/run/munge/munge.socket.2", key = "/etc/munge/munge.key";
        if (File.Exists(socket) && ReadPid(pidFile) is int running && IsAlive(running))
        {
            _log.Add($"munged already runs (pid {running}); using it");
            return;
        }
        Directory.CreateDirectory(runDir);
        Check(Run("chown", ["munge:munge", runDir], TimeSpan.FromSeconds(10)), "chown munge /run/munge");
        if (!File.Exists(key))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(key)!);
            File.WriteAllBytes(key, RandomNumberGenerator(1024));
            Check(Run("chown", ["munge:munge", key], TimeSpan.FromSeconds(10)), "chown munge.key");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(key, UnixFileMode.UserRead);
            _log.Add("created /etc/munge/munge.key");
        }
        // munged refuses to run as root with a key owned by munge: run it as munge. It forks into the background and
        // writes its pid file; the foreground process exits.
        Check(Run("runuser", ["-u", "munge", "--", "munged"], TimeSpan.FromSeconds(30), daemonLog: Path.Combine(Dir, "log", "munged.out")), "munged");
        var pid = WaitFor(() => ReadPid(pidFile) is int p && IsAlive(p) && File.Exists(socket) ? p : (int?)null, TimeSpan.FromSeconds(10))
                  ?? throw new InvalidOperationException("munged did not write its pid file and socket");
        _mungePidFile = pidFile;
        _log.Add($"munged started (pid {pid})");
    }

    private static byte[] RandomNumberGenerator(int n) => System.Security.Cryptography.RandomNumberGenerator.GetBytes(n);

    private void WriteConf()
    {
        foreach (var d in new[] { "state", "spool", "log" }) Directory.CreateDirectory(Path.Combine(Dir, d));
        string host = System.Environment.MachineName;
        int cpus = System.Environment.ProcessorCount;
        var conf = new StringBuilder()
            .Append("ClusterName=uantest\n")
            // Explicit addresses: without them slurmd cannot register when the host name does not resolve.
            .Append($"SlurmctldHost={host}(127.0.0.1)\n")
            .Append("SlurmUser=root\nSlurmdUser=root\n")
            .Append($"SlurmctldPort={ControllerPort}\nSlurmdPort={NodePort}\n")
            // cred_expire also sets how long a requeued job waits before it may start again (default 120 s).
            .Append("AuthType=auth/munge\nAuthInfo=cred_expire=10\n")
            .Append($"StateSaveLocation={Dir}/state\nSlurmdSpoolDir={Dir}/spool\n")
            .Append($"SlurmctldPidFile={Dir}/slurmctld.pid\nSlurmdPidFile={Dir}/slurmd.pid\n")
            .Append($"SlurmctldLogFile={Dir}/log/slurmctld.log\nSlurmdLogFile={Dir}/log/slurmd.log\n")
            .Append("ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n")
            .Append("AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none\nJobCompType=jobcomp/none\n")
            .Append("SchedulerType=sched/backfill\nSelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n")
            .Append("ReturnToService=2\nMpiDefault=none\nSlurmctldTimeout=30\nSlurmdTimeout=30\n")
            .Append($"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} Sockets=1 CoresPerSocket={cpus} ThreadsPerCore=1 RealMemory=2000 State=UNKNOWN\n")
            .Append($"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP\n");
        File.WriteAllText(ConfPath, conf.ToString());
    }

    private void StartDaemon(string program, string pidFileName)
    {
        string pidFile = Path.Combine(Dir, pidFileName);
        // The daemon forks into the background, writes its pid file, and the started process exits.
        Check(Run(program, ["-f", ConfPath], TimeSpan.FromSeconds(30), Environment(), Path.Combine(Dir, "log", program + ".out")), program);
        var pid = WaitFor(() => ReadPid(pidFile) is int p && IsAlive(p) ? p : (int?)null, TimeSpan.FromSeconds(15))
                  ?? throw new InvalidOperationException($"{program} wrote no pid file of a live process");
        _log.Add($"{program} started (pid {pid})");
    }

    private void WaitIdle(TimeSpan timeout)
    {
        string? last = null;
        if (WaitFor(() =>
            {
                var (code, output, err) = Client("sinfo", "-h", "-o", "%t");
                last = code == 0 ? output.Trim() : err.Trim();
                return last == "idle" ? true : (bool?)null;
            }, timeout) is null)
            throw new InvalidOperationException($"the node did not become idle within {timeout.TotalSeconds:F0} s (sinfo: '{last}')");
        _log.Add("node idle");
    }

    /// <summary>The end of the daemons' logs.</summary>
    public string DaemonLogs()
    {
        var s = new StringBuilder();
        foreach (var f in new[] { "log/slurmctld.log", "log/slurmd.log" }.Select(f => Path.Combine(Dir, f)).Where(File.Exists))
            s.Append("--- ").Append(Path.GetFileName(f)).Append('\n').Append(Tail(File.ReadAllText(f), 3000)).Append('\n');
        return s.ToString();
    }

    /// <summary>Cancels every job of the cluster, then stops slurmd, slurmctld and (when started here) munged by their pid files.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (ReadPid(Path.Combine(Dir, "slurmctld.pid")) is int ctld && IsAlive(ctld))
            {
                foreach (var (id, _) in Queue()) Client("scancel", id);
                WaitFor(() => Queue().Count == 0 ? true : (bool?)null, TimeSpan.FromSeconds(30));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or IOException)
        {
            _log.Add($"cancelling jobs: {e.Message}");
        }
        Stop(Path.Combine(Dir, "slurmd.pid"));
        Stop(Path.Combine(Dir, "slurmctld.pid"));
        if (_mungePidFile is not null) Stop(_mungePidFile);
    }

    private void Stop(string pidFile)
    {
        if (ReadPid(pidFile) is not int pid || !IsAlive(pid)) return;
        kill(pid, 15);
        if (WaitFor<bool>(() => IsAlive(pid) ? null : true, TimeSpan.FromSeconds(15)) is null)
        {
            _log.Add($"pid {pid} ({pidFile}) ignored SIGTERM; SIGKILL");
            kill(pid, 9);
            WaitFor<bool>(() => IsAlive(pid) ? null : true, TimeSpan.FromSeconds(5));
        }
    }

    private static int? ReadPid(string pidFile)
    {
        try { return int.TryParse(File.ReadAllText(pidFile).Trim(), out int pid) && pid > 0 ? pid : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>Whether <paramref name="pid"/> is a live process: it exists and is not a zombie (this machine's init reaps late).</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // "pid (comm) S ...": the state follows the last ')'.
            int close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] is not ('Z' or 'X');
        }
        catch (IOException) { return false; }
    }

    /// <summary>Polls <paramref name="probe"/> every 200 ms until it returns a value or <paramref name="timeout"/> passes.</summary>
    public static T? WaitFor<T>(Func<T?> probe, TimeSpan timeout) where T : struct
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (probe() is T value) return value;
            if (clock.Elapsed > timeout) return null;
            Thread.Sleep(200);
        }
    }

    private static void Check((int Code, string Out, string Err) result, string what)
    {
        if (result.Code != 0) throw new InvalidOperationException($"{what} failed (exit {result.Code}): {Tail(result.Err + result.Out)}");
    }

    private static string Tail(string text, int chars = 1500) => text.Length <= chars ? text.Trim() : "…" + text[^chars..].Trim();

    internal static string? Which(string program) =>
        (System.Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Append("/usr/sbin").Append("/sbin")
        .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    /// <summary>
    /// Runs <paramref name="program"/> to its end. With <paramref name="daemonLog"/> it goes through a shell that
    /// closes every descriptor above 2, sends its output to that file and starts it in a new session, so a daemon it
    /// leaves behind holds none of the test host's files (a lock held by a daemon would outlive the test) nor the
    /// pipes read here.
    /// </summary>
    internal static (int Code, string Out, string Err) Run(string program, IReadOnlyList<string> args, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment = null, string? daemonLog = null)
    {
        string path = Which(program) ?? program;
        ProcessStartInfo start;
        if (daemonLog is not null)
        {
            start = new ProcessStartInfo("/bin/bash");
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add("for f in /proc/$$/fd/*; do n=${f##*/}; if [ \"$n\" -gt 2 ]; then eval \"exec $n>&-\" 2>/dev/null; fi; done; " +
                                   "log=$1; shift; exec setsid \"$@\" </dev/null >>\"$log\" 2>&1");
            start.ArgumentList.Add("bash");
            start.ArgumentList.Add(daemonLog);
            start.ArgumentList.Add(path);
        }
        else start = new ProcessStartInfo(path);
        foreach (var a in args) start.ArgumentList.Add(a);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        if (environment is not null) foreach (var (k, v) in environment) start.Environment[k] = v;
        using var p = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill();
            throw new InvalidOperationException($"{program} {string.Join(" ", args)} did not end within {timeout.TotalSeconds:F0} s");
        }
        p.WaitForExit();
        return (p.ExitCode, output.Result, err.Result);
    }
}
