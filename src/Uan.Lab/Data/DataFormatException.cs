namespace Uan.Lab.Data;

/// <summary>
/// A data file exists but cannot be read as the format it claims to be (truncated, wrong magic number, sizes that
/// disagree, checksums that fail, values out of range), or cannot be read at all (permission denied, a folder where a
/// file belongs or the reverse). The message always starts with the path, then says what is wrong.
/// </summary>
public sealed class DataFormatException : IOException
{
    /// <summary>Creates the exception for <paramref name="path"/> with a description of the problem.</summary>
    public DataFormatException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        FilePath = path;
        Problem = problem;
    }

    /// <summary>The file (or folder) that could not be read.</summary>
    public string FilePath { get; }

    /// <summary>What is wrong with it, without the path.</summary>
    public string Problem { get; }
}
