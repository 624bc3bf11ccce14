// The benchmark suite: dotnet run -c Release --project bench/Uan.Benchmarks -- [BenchmarkDotNet arguments]
// For example --filter '*NormForwardBackward*' or --filter '*ShallowCnnStep*'; with no arguments BenchmarkDotNet asks.
// Every benchmark class has BatchNorm as its baseline, so the Ratio column is the time relative to BatchNorm2d in the
// same run. Benchmarks run in process (TorchSharp's native libraries load once) with a short job: the tensor-op path
// takes seconds per call at these sizes. "Allocated" counts managed memory only; the native memory an autograd graph
// keeps for backward is measured by `uan bench` (column "kept for backward").
using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Uan.Benchmarks.NormForwardBackward).Assembly).Run(args);
