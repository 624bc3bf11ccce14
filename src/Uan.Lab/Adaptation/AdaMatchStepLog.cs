using System.Globalization;
using System.Text;

namespace Uan.Lab.Adaptation;

/// <summary>
/// <c>steps.csv</c> in an AdaMatch run folder: one row per training step with its losses, mask rate, learning rate,
/// warm-up weight, the mean |logit| of the train-mode and the eval-mode source passes, and the gradient norm. Rows are
/// kept in memory and appended to the file (flushed to disk) by <see cref="Flush"/>, which the trainer calls before it
/// commits an epoch; so the rows of every committed epoch are on disk. Opening the log for a run drops the rows of
/// epochs its commit record does not hold (an epoch a crash interrupted, which the resumed run trains again) and a
/// last line a kill cut short.
/// </summary>
public sealed class AdaMatchStepLog
{
    /// <summary>File name inside the run folder.</summary>
    public const string FileName = "steps.csv";

    /// <summary>The CSV header.</summary>
    public const string Header =
        "epoch,step,loss,source_loss,target_loss,mask_rate,lr,mu,source_correct,train_logit_abs,eval_logit_abs,grad_norm";

    readonly string _path;
    readonly List<(int Epoch, long Step, AdaMatchStep Result)> _rows;
    int _flushed;

    AdaMatchStepLog(string path, List<(int, long, AdaMatchStep)> rows)
    {
        _path = path;
        _rows = rows;
        _flushed = rows.Count;
    }

    /// <summary>The rows so far (on disk and not yet flushed).</summary>
    public IReadOnlyList<(int Epoch, long Step, AdaMatchStep Result)> Rows => _rows;

    /// <summary>
    /// The log of <paramref name="runDir"/>, keeping the rows of its first <paramref name="committedEpochs"/> epochs
    /// (0 for a new run); the file is rewritten (atomically) when that drops anything.
    /// </summary>
    public static AdaMatchStepLog Open(string runDir, int committedEpochs)
    {
        string path = Path.Combine(runDir, FileName);
        var rows = new List<(int, long, AdaMatchStep)>();
        bool rewrite = true;
        if (File.Exists(path))
        {
            var text = File.ReadAllText(path);
            // A kill during an append can leave a partial last line; its epoch was not committed.
            int end = text.LastIndexOf('\n') + 1;
            var all = Parse(path, text[..end]);
            rows.AddRange(all.Where(r => r.Epoch <= committedEpochs));
            rewrite = end != text.Length || rows.Count != all.Count;
        }
        if (rewrite) AtomicFile.WriteAllText(path, Format(rows, header: true));
        return new AdaMatchStepLog(path, rows);
    }

    /// <summary>Adds one step (the signature of <see cref="AdaMatchTrainer.StepFinished"/>).</summary>
    public void Add(int epoch, long step, AdaMatchStep result) => _rows.Add((epoch, step, result));

    /// <summary>Appends the rows added since the last flush to the file and flushes it to disk.</summary>
    public void Flush()
    {
        if (_flushed == _rows.Count) return;
        var bytes = new UTF8Encoding(false).GetBytes(Format(_rows.Skip(_flushed), header: false));
        using (var stream = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        _flushed = _rows.Count;
    }

    static string Format(IEnumerable<(int Epoch, long Step, AdaMatchStep Result)> rows, bool header)
    {
        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        if (header) text.Append(Header).Append('\n');
        foreach (var (epoch, step, r) in rows)
            text.Append(string.Join(",", new[]
            {
                epoch.ToString(inv), step.ToString(inv), R(r.Loss), R(r.SourceLoss), R(r.TargetLoss), R(r.MaskRate),
                R(r.LearningRate), R(r.Warmup), r.SourceCorrect.ToString(inv), R(r.TrainLogitScale),
                R(r.EvalLogitScale), R(r.GradNorm),
            })).Append('\n');
        return text.ToString();

        static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    }

    /// <summary>Reads a <c>steps.csv</c>; the error names the file and line when it is not one.</summary>
    public static IReadOnlyList<(int Epoch, long Step, AdaMatchStep Result)> Load(string path) => Parse(path, File.ReadAllText(path));

    static List<(int Epoch, long Step, AdaMatchStep Result)> Parse(string path, string content)
    {
        var lines = content.Split('\n');
        if (lines.Length == 0 || lines[0] != Header)
            throw new InvalidDataException($"{path}: not an AdaMatch step log (expected the header '{Header}')");
        var rows = new List<(int, long, AdaMatchStep)>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            var f = lines[i].Split(',');
            try
            {
                if (f.Length != 12) throw new FormatException($"{f.Length} fields, expected 12");
                double D(int j) => double.Parse(f[j], NumberStyles.Float, CultureInfo.InvariantCulture);
                rows.Add((int.Parse(f[0], CultureInfo.InvariantCulture), long.Parse(f[1], CultureInfo.InvariantCulture),
                    new AdaMatchStep(D(2), D(3), D(4), D(5), D(6), D(7), long.Parse(f[8], CultureInfo.InvariantCulture),
                        D(9), D(10), D(11))));
            }
            catch (FormatException e)
            {
                throw new InvalidDataException($"{path}, line {i + 1}: {e.Message}", e);
            }
        }
        return rows;
    }
}
