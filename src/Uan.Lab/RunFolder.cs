using System.Text.RegularExpressions;

namespace Uan.Lab;

/// <summary>
/// Thrown when a run folder is held by another writer (another process, or another <see cref="RunFolder"/> in this
/// one). The message is one line naming the folder and the holder.
/// </summary>
public sealed class RunFolderLockedException : IOException
{
    /// <summary>Creates the exception for <paramref name="runDir"/>, held by <paramref name="holder"/>.</summary>
    public RunFolderLockedException(string runDir, string holder, Exception? inner = null)
        : base($"{runDir} is in use by {holder}; wait for it to finish or choose another folder", inner)
    {
        RunDir = runDir;
        Holder = holder;
    }

    /// <summary>The run folder.</summary>
    public string RunDir { get; }
    /// <summary>Who holds it: "pid P on HOST since TIME", as the holder recorded it.</summary>
    public string Holder { get; }
}

/// <summary>
/// A run folder held for writing, and its commit protocol. The run folder is the unit of durability: one lock, one
/// commit record (<c>results.json</c>) written last, everything else derivable or re-creatable from what the commit
/// record names.
/// <para>
/// Lock: <see cref="LockFile"/> opened with <see cref="FileShare.None"/>, which .NET on Unix turns into an exclusive
/// <c>flock</c> (on Windows a sharing mode); the kernel drops it when the process dies, however it dies, so a killed
/// run never leaves its folder stuck. The holder's pid, host and start time go to <see cref="HolderFile"/>, since the
/// locked file cannot be read by others.
/// </para>
/// <para>
/// Commit of an epoch: every file the epoch changes is first written in full under its name plus
/// <see cref="PendingSuffix"/> (each through <see cref="AtomicFile"/>), then the commit record is replaced, then the
/// pending files are renamed over their final names. Until the commit record is replaced the previous epoch's files
/// are untouched; after it, the pending files hold exactly what the record names. <see cref="Recover"/> finishes
/// either way: pending files of the committed epoch are renamed into place, those of a later (uncommitted) epoch are
/// deleted, and anything else is refused.
/// </para>
/// </summary>
public sealed class RunFolder : IDisposable
{
    /// <summary>Name of the lock file inside the run folder.</summary>
    public const string LockFile = ".lock";
    /// <summary>Name of the side file saying who holds the lock.</summary>
    public const string HolderFile = ".lock-holder";
    /// <summary>Suffix of a file staged for the next commit.</summary>
    public const string PendingSuffix = ".pending";

    // AtomicFile's temporaries: NAME.<32 hex digits>.tmp.
    private static readonly Regex Temporary = new(@"\.[0-9a-f]{32}\.tmp$", RegexOptions.CultureInvariant);

    private FileStream? _lock;

    private RunFolder(string path, FileStream lockStream)
    {
        Path = path;
        _lock = lockStream;
    }

    /// <summary>The run folder.</summary>
    public string Path { get; }

    /// <summary>
    /// Called at the named points of a commit (see the trainers) with the point and the epoch being committed. Tests
    /// throw from it to stop a commit half-way, as a kill would.
    /// </summary>
    internal Action<string, int>? Fault { get; set; }

    /// <summary>Creates the folder if needed and takes its lock; throws <see cref="RunFolderLockedException"/> if it is held.</summary>
    public static RunFolder Lock(string runDir) =>
        TryLock(runDir, out var holder) ?? throw new RunFolderLockedException(runDir, holder!);

    /// <summary>Takes the folder's lock, or returns null and says who holds it in <paramref name="holder"/>.</summary>
    public static RunFolder? TryLock(string runDir, out string? holder)
    {
        Directory.CreateDirectory(runDir);
        string lockPath = System.IO.Path.Combine(runDir, LockFile);
        FileStream stream;
        try
        {
            stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException or PathTooLongException))
        {
            holder = DescribeHolder(runDir);
            return null;
        }
        holder = null;
        var folder = new RunFolder(runDir, stream);
        try
        {
            AtomicFile.WriteAllText(System.IO.Path.Combine(runDir, HolderFile),
                $"pid {Environment.ProcessId} on {Environment.MachineName} since {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss} UTC\n");
        }
        catch
        {
            folder.Dispose();
            throw;
        }
        return folder;
    }

    /// <summary>
    /// Whether a process holds <paramref name="runDir"/>'s lock now, without creating or writing anything there (for
    /// status reports). Only a folder whose <see cref="HolderFile"/> exists is probed: a holder writes that file right
    /// after taking the lock and deletes it before letting go, so a folder without it is free (or being taken this very
    /// instant), and one with it is either held or was left by a killed process, which the probe (an exclusive lock
    /// taken and dropped at once) tells apart. <paramref name="holder"/> is the holder's description when held.
    /// </summary>
    public static bool IsHeld(string runDir, out string? holder)
    {
        holder = null;
        string lockPath = System.IO.Path.Combine(runDir, LockFile);
        if (!File.Exists(lockPath) || !File.Exists(System.IO.Path.Combine(runDir, HolderFile))) return false;
        try
        {
            using var probe = new FileStream(lockPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (FileNotFoundException) { return false; }
        catch (DirectoryNotFoundException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
        catch (IOException)
        {
            holder = DescribeHolder(runDir);
            return true;
        }
    }

    /// <summary>Who holds <paramref name="runDir"/>, from its <see cref="HolderFile"/>.</summary>
    public static string DescribeHolder(string runDir)
    {
        try
        {
            var text = File.ReadAllText(System.IO.Path.Combine(runDir, HolderFile)).Trim();
            if (text.Length > 0) return text;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        // The holder has just taken the lock and not yet written the side file.
        return "another process";
    }

    /// <summary>Path of <paramref name="name"/> inside the folder.</summary>
    public string PathOf(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>
    /// Deletes the temporaries a killed <see cref="AtomicFile.Write"/> left behind, here and in subfolders (snapshots);
    /// only this holder writes in the folder, so none of them is being written.
    /// </summary>
    public void RemoveStaleTemporaries()
    {
        foreach (var path in Directory.EnumerateFiles(Path, "*.tmp", SearchOption.AllDirectories))
            if (Temporary.IsMatch(System.IO.Path.GetFileName(path)))
                File.Delete(path);
    }

    /// <summary>Deletes every staged file (a fresh run starts without the leftovers of an uncommitted epoch).</summary>
    public void RemovePending()
    {
        foreach (var path in Directory.EnumerateFiles(Path, "*" + PendingSuffix)) File.Delete(path);
    }

    /// <summary>Writes <paramref name="name"/>'s next version as <c>NAME.pending</c>, in full, for <see cref="Commit"/>.</summary>
    public void Stage(string name, int epoch, Action<FileStream> write)
    {
        AtomicFile.Write(PathOf(name) + PendingSuffix, write);
        Fault?.Invoke("staged:" + name, epoch);
    }

    /// <summary>Signals a commit point to <see cref="Fault"/> (for steps a trainer performs itself).</summary>
    public void Point(string point, int epoch) => Fault?.Invoke(point, epoch);

    /// <summary>
    /// Commits epoch <paramref name="epoch"/>: saves <paramref name="record"/> (the commit record), then renames the
    /// <paramref name="staged"/> files into place.
    /// </summary>
    public void Commit(Training.RunRecord record, int epoch, IEnumerable<string> staged)
    {
        record.Save(Path);
        Fault?.Invoke("committed", epoch);
        foreach (var name in staged)
        {
            File.Move(PathOf(name) + PendingSuffix, PathOf(name), overwrite: true);
            Fault?.Invoke("installed:" + name, epoch);
        }
    }

    /// <summary>
    /// Brings checkpoint <paramref name="name"/> in line with the commit record, which says it holds epoch
    /// <paramref name="expected"/> (0: no such file) and records <paramref name="committed"/> finished epochs. A
    /// pending version of the expected epoch is renamed into place, one of a later epoch is deleted; the file must
    /// then hold the expected epoch. Otherwise throws <see cref="InvalidDataException"/> naming the file.
    /// <paramref name="readEpoch"/> reads the epoch a checkpoint holds; <paramref name="what"/> says what the commit
    /// record expects, for the message.
    /// </summary>
    public void Recover(string name, int committed, int expected, Func<string, int> readEpoch, string what)
    {
        string path = PathOf(name), pending = path + PendingSuffix, record = PathOf(Training.RunRecord.FileName);
        if (File.Exists(pending))
        {
            int staged = readEpoch(pending);
            if (staged == expected && expected > 0) File.Move(pending, path, overwrite: true);
            else if (staged > committed) File.Delete(pending);
            else throw new InvalidDataException($"{pending}: holds epoch {staged}, but {record} {what}");
        }
        bool exists = File.Exists(path);
        if (expected == 0)
        {
            if (exists) throw new InvalidDataException($"{path}: holds epoch {readEpoch(path)}, but {record} {what}");
            return;
        }
        if (!exists) throw new InvalidDataException($"{path}: missing, but {record} {what}");
        int holds = readEpoch(path);
        if (holds != expected) throw new InvalidDataException($"{path}: holds epoch {holds}, but {record} {what}");
    }

    /// <summary>
    /// Checks that the commit record lists its finished epochs as 1, 2, …, in order, and returns how many there are;
    /// otherwise throws <see cref="InvalidDataException"/> naming the record.
    /// </summary>
    public int CommittedEpochs(IEnumerable<int> listed)
    {
        int i = 0;
        foreach (int epoch in listed)
            if (epoch != ++i)
                throw new InvalidDataException($"{PathOf(Training.RunRecord.FileName)}: epoch {epoch} listed as finished epoch {i}");
        return i;
    }

    /// <summary>
    /// The epoch field of a checkpoint that starts with <paramref name="magic"/> (a <see cref="BinaryWriter"/>
    /// string) and then the epoch as a 32-bit integer; the error names the file.
    /// </summary>
    public static int ReadCheckpointEpoch(string path, string magic)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            using var reader = new BinaryReader(stream);
            if (reader.ReadString() != magic) throw new InvalidDataException($"{path}: not a {magic} checkpoint");
            return reader.ReadInt32();
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{path}: checkpoint is truncated", e);
        }
    }

    /// <summary>Releases the lock (the holder file goes first, so it never names a holder that let go).</summary>
    public void Dispose()
    {
        if (_lock is null) return;
        try { File.Delete(PathOf(HolderFile)); }
        catch (IOException) { }
        _lock.Dispose();
        _lock = null;
    }
}
