using System.Text.Json;
using Uan.Lab.Training;

namespace Uan.Lab.Diagnostics;

/// <summary>One gradient probe of one epoch: max and mean over tensors of the gradient variance on one domain.</summary>
/// <param name="Epoch">1-based epoch after which the probe ran.</param>
/// <param name="Domain">Where the batch came from ("source", "target", "train", ...).</param>
/// <param name="Definition">"paper" (summed logits) or "loss" (cross-entropy), see <see cref="GradientDefinition"/>.</param>
/// <param name="Max">Largest per-tensor variance.</param>
/// <param name="Mean">Mean per-tensor variance.</param>
public sealed record GradientProbeRecord(int Epoch, string Domain, string Definition, double Max, double Mean)
{
    /// <summary>The record of <paramref name="probe"/> measured after <paramref name="epoch"/> on <paramref name="domain"/>.</summary>
    public static GradientProbeRecord From(int epoch, string domain, GradientVariance probe) =>
        new(epoch, domain, GradientProbe.Name(probe.Definition), probe.Max, probe.Mean);
}

/// <summary>
/// The per-epoch gradient probes of a run, kept as <c>gradient-probe.json</c> beside <c>results.json</c> (same
/// serializer settings), rewritten whole and atomically after each epoch so a killed run leaves a valid file.
/// </summary>
public static class GradientProbeLog
{
    /// <summary>Name of the file inside a run folder.</summary>
    public const string FileName = "gradient-probe.json";

    /// <summary>Writes <paramref name="records"/> to <c>RUN_DIR/gradient-probe.json</c> via a temporary file and a rename.</summary>
    public static void Save(string runDir, IEnumerable<GradientProbeRecord> records) =>
        AtomicFile.WriteAllText(Path.Combine(runDir, FileName), JsonSerializer.Serialize(records.ToList(), RunResults.Json));

    /// <summary>Reads the file of a run folder (or the file itself); the error names the file when it is not valid.</summary>
    public static IReadOnlyList<GradientProbeRecord> Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, FileName);
        try
        {
            return JsonSerializer.Deserialize<List<GradientProbeRecord>>(File.ReadAllText(path), RunResults.Json)
                   ?? throw new InvalidDataException($"{path}: empty gradient-probe file");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a valid gradient-probe file ({e.Message})", e);
        }
    }
}
