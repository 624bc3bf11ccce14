using System.Text.RegularExpressions;
using Uan.Lab.Data;

namespace Uan.Lab.Tests.Reporting;

/// <summary>
/// The README quotes rows of the study's <c>verdicts.md</c> (which <c>uan report --study</c> makes from the committed
/// runs) and says how many runs it rests on. Both must be what <c>verdicts.md</c> prints, so the README cannot drift
/// from the committed results when new runs land.
/// </summary>
public class ReadmeQuotesTests
{
    private static (string[] Readme, string[] Verdicts) Files()
    {
        var data = DataLocator.FindRepoDataDir(AppContext.BaseDirectory);
        Assert.True(data is not null, "the tests run inside the repository");
        string root = Path.GetDirectoryName(data)!;
        return (File.ReadAllLines(Path.Combine(root, "README.md")),
                File.ReadAllLines(Path.Combine(root, "docs", "results", "study", "verdicts.md")));
    }

    [Fact]
    public void StudyRowsInTheReadmeAreRowsOfTheVerdictsSummary()
    {
        var (readme, verdicts) = Files();
        var summary = verdicts.SkipWhile(l => l != "## Summary").Skip(1).TakeWhile(l => !l.StartsWith("## ", StringComparison.Ordinal))
            .Where(l => l.StartsWith("| ", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(summary);
        // README rows: | claim (number or "batch", then words) | where | comparison | metric | seeds | difference [CI] |
        // verdict |, the summary's columns without the last; the metric may be cut short at its end.
        var quoted = readme.Where(l => Regex.IsMatch(l, @"^\| ([1-4]|batch) [a-z]")).ToList();
        Assert.NotEmpty(quoted);
        foreach (var row in quoted)
        {
            var cells = row.Trim().Trim('|').Split(" | ").Select(c => c.Trim()).ToArray();
            Assert.True(cells.Length == 7, $"README study row without 7 cells: {row}");
            string claim = cells[0].Split(' ')[0];
            Assert.True(summary.Any(v => v.StartsWith($"| {claim} | {cells[1]} | {cells[2]} | {cells[3]}", StringComparison.Ordinal)
                                         && v.Contains($" | {cells[4]} | {cells[5]} | {cells[6]} |", StringComparison.Ordinal)),
                $"this README row is not a row of verdicts.md's summary (regenerate and copy it): {row}");
        }
    }

    [Fact]
    public void TheReadmesCountsOfFinishedRunsAreTheVerdicts()
    {
        var (readme, verdicts) = Files();
        var said = Regex.Match(string.Join(" ", readme),
            @"Runs finished: (\d+) of the (\d+) classification runs and (\d+) of the (\d+) adaptation runs");
        Assert.True(said.Success, "the README says how many of the study's classification and adaptation runs are finished");
        string used = verdicts.Single(l => l.StartsWith("Used (", StringComparison.Ordinal));
        int classification = Regex.Matches(used, "`fmnist-").Count, adaptation = Regex.Matches(used, "`adapt-").Count;
        Assert.Equal(classification, int.Parse(said.Groups[1].Value));
        Assert.Equal(adaptation, int.Parse(said.Groups[3].Value));
        Assert.True(classification <= int.Parse(said.Groups[2].Value), "more classification runs than the study plans");
        Assert.True(adaptation <= int.Parse(said.Groups[4].Value), "more adaptation runs than the study plans");
    }
}
