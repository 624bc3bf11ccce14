using Uan.Cli;

return UanCommand.Run(args);
