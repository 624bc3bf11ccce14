using System.CommandLine;
using Uan.Lab.Data;

namespace Uan.Cli;

/// <summary><c>uan data list</c> and <c>uan data fetch</c>.</summary>
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
        return command;
    }
}
