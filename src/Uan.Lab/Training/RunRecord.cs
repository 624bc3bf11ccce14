using System.Text.Json;
using System.Text.Json.Serialization;

namespace Uan.Lab.Training;

/// <summary>
/// What every run folder's <c>results.json</c> holds besides its configuration and epochs: how the run ended, where
/// and when it was made, and its size; plus the file's name, its JSON conventions and the atomic save. Classification
/// runs (<see cref="RunResults"/>) and AdaMatch runs (<see cref="Adaptation.AdaMatchResults"/>) derive from it.
/// <para>
/// The JSON of a derived record lists its own properties first, then these, in declaration order: the same files as
/// before this base existed.
/// </para>
/// </summary>
public abstract record RunRecord
{
    /// <summary>Name of the file inside a run folder.</summary>
    public const string FileName = "results.json";

    /// <summary>Serializer settings of results files (camelCase, indented, nulls omitted).</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>running, completed, stopped (Ctrl-C or SIGTERM; resumable), diverged (non-finite loss), failed.</summary>
    public string Status { get; set; } = "running";
    /// <summary>Why the run stopped, when it did not complete.</summary>
    public string? Message { get; set; }
    /// <summary>Where the run was made.</summary>
    public EnvironmentInfo Environment { get; init; } = new();
    /// <summary>When the run first started.</summary>
    public DateTimeOffset Started { get; init; }
    /// <summary>When the file was last written.</summary>
    public DateTimeOffset Updated { get; set; }
    /// <summary>Total wall seconds over all epochs, including evaluation (and across resumes).</summary>
    public double TotalSeconds { get; set; }
    /// <summary>Trainable parameters in the model.</summary>
    public long ParameterCount { get; init; }

    /// <summary>
    /// Writes <c>results.json</c> into <paramref name="runDir"/> via a temporary file and a rename, so readers never
    /// see half a file. Serialised as its runtime type, so every property of the derived record is written.
    /// </summary>
    public void Save(string runDir) =>
        AtomicFile.WriteAllText(Path.Combine(runDir, FileName), JsonSerializer.Serialize(this, GetType(), Json));

    /// <summary>
    /// Ends a run: sets <see cref="Status"/> and <see cref="Message"/>, stamps <see cref="Updated"/>, saves into
    /// <paramref name="runDir"/> and returns <paramref name="results"/>.
    /// </summary>
    public static T Finish<T>(T results, string runDir, string status, string? message) where T : RunRecord
    {
        results.Status = status;
        results.Message = message;
        results.Updated = DateTimeOffset.Now;
        results.Save(runDir);
        return results;
    }

    /// <summary>
    /// Reads a results file as <typeparamref name="T"/> (<paramref name="path"/> may be the run folder); the error
    /// names the file and says it is not a valid <paramref name="what"/> when it cannot be parsed.
    /// </summary>
    protected static T Load<T>(string path, string what) where T : RunRecord
    {
        if (Directory.Exists(path)) path = Path.Combine(path, FileName);
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Json)
                   ?? throw new InvalidDataException($"{path}: empty results file");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a valid {what} ({e.Message})", e);
        }
    }

    /// <summary>
    /// Throws <see cref="ArgumentException"/> unless <paramref name="saved"/> (the configuration in a run folder's
    /// results) and <paramref name="current"/> agree once <paramref name="blank"/> has reset the fields a resume may
    /// change; the message names <paramref name="runDir"/> and shows the saved configuration so blanked.
    /// </summary>
    public static void CheckResumable<TConfig>(string runDir, TConfig saved, TConfig current, Func<TConfig, TConfig> blank)
        where TConfig : IEquatable<TConfig>
    {
        var a = blank(saved);
        var b = blank(current);
        if (!a.Equals(b))
            throw new ArgumentException($"cannot resume {runDir}: its configuration differs from this one " +
                                        $"(saved: {JsonSerializer.Serialize(a, Json).ReplaceLineEndings(" ")})");
    }
}
