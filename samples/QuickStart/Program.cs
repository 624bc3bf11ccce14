using TorchSharp;
using Uan;
using static TorchSharp.torch;

// A small CNN with UAN after its second convolution, trained for a few steps on random data.
manual_seed(0);
var model = nn.Sequential(
    nn.Conv2d(3, 16, 3, padding: 1), nn.BatchNorm2d(16), nn.ReLU(),
    nn.Conv2d(16, 32, 3, padding: 1),
    new UnsupervisedAdaptiveNorm(32, new UanOptions { Components = 3 }),   // or Norms.Create("uan:k=3", 32)
    nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10));
var optimizer = optim.AdamW(model.parameters(), lr: 1e-3);
for (int step = 0; step < 5; step++)
{
    using var scope = NewDisposeScope();
    var (x, y) = (randn(64, 3, 32, 32), randint(10, 64));
    var loss = nn.functional.cross_entropy(model.forward(x), y);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    Console.WriteLine($"step {step}: loss {loss.item<float>():F4}");
}
