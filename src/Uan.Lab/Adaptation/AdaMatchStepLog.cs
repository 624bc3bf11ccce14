using System.Globalization;
using System.Text;

namespace Uan.Lab.Adaptation;

/// <summary>
/// <c>steps.csv</c> in an AdaMatch run folder: one row per training step with its losses, mask rate, learning rate,
/// warm-up weight, the mean |logit| of the train-mode and the eval-mode source passes, and the gradient norm. Rows are
/// kept in memory and the file is rewritten atomically every <see cref="SaveEvery"/> steps and on
/// <see cref="Save"/>. A step index that is not after the last row (a resumed run repeating an unfinished epoch)
/// replaces the rows from that step on.
/// </summary>
public sealed class AdaMatchStepLog
{
    /// <summary>File name inside the run folder.</summary>
    public const string FileName = "steps.csv";

    /// <summary>Rows between automatic saves.</summary>
    public const int SaveEvery = 10;

    /// <summary>The CSV header.</summary>
    public const string Header =
        "epoch,step,loss,source_loss,target_loss,mask_rate,lr,mu,source_correct,train_logit_abs,eval_logit_abs,grad_norm";

    readonly string _path;
    readonly List<(int Epoch, long Step, AdaMatchStep Result)> _rows;
    int _unsaved;

    AdaMatchStepLog(string path, List<(int, long, AdaMatchStep)> rows)
    {
        _path = path;
        _rows = rows;
    }

    /// <summary>The rows so far.</summary>
    public IReadOnlyList<(int Epoch, long Step, AdaMatchStep Result)> Rows => _rows;

    /// <summary>A log for <paramref name="runDir"/>; with <paramref name="resume"/> the existing file's rows are kept.</summary>
    public static AdaMatchStepLog Open(string runDir, bool resume)
    {
        string path = Path.Combine(runDir, FileName);
        return new AdaMatchStepLog(path, resume && File.Exists(path) ? Load(path).ToList() : []);
    }

    /// <summary>Adds one step (the signature of <see cref="AdaMatchTrainer.StepFinished"/>).</summary>
    public void Add(int epoch, long step, AdaMatchStep result)
    {
        while (_rows.Count > 0 && _rows[^1].Step >= step) _rows.RemoveAt(_rows.Count - 1);
        _rows.Add((epoch, step, result));
        if (++_unsaved >= SaveEvery) Save();
    }

    /// <summary>Writes the file (temporary file, then rename).</summary>
    public void Save()
    {
        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder(Header).Append('\n');
        foreach (var (epoch, step, r) in _rows)
            text.Append(string.Join(",", new[]
            {
                epoch.ToString(inv), step.ToString(inv), R(r.Loss), R(r.SourceLoss), R(r.TargetLoss), R(r.MaskRate),
                R(r.LearningRate), R(r.Warmup), r.SourceCorrect.ToString(inv), R(r.TrainLogitScale),
                R(r.EvalLogitScale), R(r.GradNorm),
            })).Append('\n');
        Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
        AtomicFile.WriteAllText(_path, text.ToString());
        _unsaved = 0;

        static string R(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    }

    /// <summary>Reads a <c>steps.csv</c>; the error names the file and line when it is not one.</summary>
    public static IReadOnlyList<(int Epoch, long Step, AdaMatchStep Result)> Load(string path)
    {
        var lines = File.ReadAllLines(path);
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
