namespace Uan.Cli;

/// <summary>
/// An output folder made, and checked writable, before a command reads any data: a folder it cannot write then fails
/// at once in one line instead of after minutes of loading. The folders it had to create are removed again on
/// <see cref="Dispose"/> if nothing was written into them, so a command that fails early leaves nothing behind.
/// </summary>
internal sealed class OutputFolder : IDisposable
{
    private readonly List<string> _created;

    private OutputFolder(List<string> created) => _created = created;

    /// <summary>Creates <paramref name="dir"/> (and missing parents) and checks it takes files; throws <see cref="ArgumentException"/> naming <paramref name="option"/>.</summary>
    public static OutputFolder Claim(string dir, string option)
    {
        string full;
        try
        {
            full = Path.GetFullPath(dir);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new ArgumentException($"{option}: '{dir}' is not a usable folder path", e);
        }
        var missing = new List<string>();
        for (string? d = full; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
        {
            if (File.Exists(d)) throw new ArgumentException($"{option}: cannot create {dir}: {d} is a file, not a folder");
            missing.Add(d);
        }
        try
        {
            Directory.CreateDirectory(full);
            // An existing folder can still refuse files (read-only mount, permissions, a pseudo file system).
            using (new FileStream(Path.Combine(full, $".uan-write-check-{Guid.NewGuid():N}"), FileMode.CreateNew,
                       FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            RemoveEmpty(missing);
            throw new ArgumentException($"{option}: cannot write into {dir}: {e.Message}", e);
        }
        return new OutputFolder(missing);
    }

    /// <summary>Removes the folders <see cref="Claim"/> created that are still empty.</summary>
    public void Dispose() => RemoveEmpty(_created);

    // Deepest first (the order they were found in), stopping at the first that is not empty.
    private static void RemoveEmpty(List<string> created)
    {
        foreach (string d in created)
        {
            try
            {
                if (!Directory.Exists(d) || Directory.EnumerateFileSystemEntries(d).Any()) return;
                Directory.Delete(d);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return;
            }
        }
    }
}
