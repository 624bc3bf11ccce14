using System.Text;

namespace Uan.Lab;

/// <summary>
/// Writes a file through a uniquely named temporary file in the same folder, flushed to disk, then a rename: a
/// reader (or a resumed run after a crash) sees the old file or the new one, never half of one. Every results file,
/// checkpoint, snapshot, table and plot the project writes goes through here.
/// </summary>
public static class AtomicFile
{
    /// <summary>Creates the folder if needed and writes <paramref name="path"/> with <paramref name="write"/>.</summary>
    public static void Write(string path, Action<FileStream> write)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var tmp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = File.Create(tmp))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark (as File.WriteAllText does).</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text));
}
