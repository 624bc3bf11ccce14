using TorchSharp;
using Uan;
using Uan.Lab.Data;
using static TorchSharp.torch;

// A small CNN with UAN after its second convolution, trained for 300 steps on the embedded MNIST subset
// (data/mnist-subset): the loss falls and the test accuracy climbs from chance (7 % here) to 84 % after 300 steps.
manual_seed(0);
var locator = new DataLocator();
using var train = locator.Load("mnist-subset", train: true);
using var test = locator.Load("mnist-subset", train: false);
static Tensor Input(Tensor bytes) => (bytes.to(ScalarType.Float32) / 255 - 0.1307) / 0.3081;

var model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding: 1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding: 1),
    new UnsupervisedAdaptiveNorm(32, new UanOptions { Components = 3 }),   // or Norms.Create("uan:k=3", 32)
    nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10));
var optimizer = optim.AdamW(model.parameters(), lr: 3e-3);

double TestAccuracy()
{
    using var scope = NewDisposeScope();
    using var noGrad = no_grad();
    model.eval();
    var predicted = model.forward(Input(test.Images)).argmax(1);
    model.train();
    return predicted.eq(test.Labels).to(ScalarType.Float32).mean().item<float>();
}

Console.WriteLine($"before training: test accuracy {TestAccuracy():P1} on {test.Count} images");
var random = new Random(0);
double running = 0;
for (int step = 1; step <= 300; step++)
{
    using var scope = NewDisposeScope();
    var batch = tensor(Enumerable.Range(0, 64).Select(_ => (long)random.Next((int)train.Count)).ToArray());
    var loss = nn.functional.cross_entropy(model.forward(Input(train.Images.index_select(0, batch))), train.Labels.index_select(0, batch));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    running += loss.item<float>();
    if (step % 50 == 0)
    {
        Console.WriteLine($"step {step}: mean training loss {running / 50:F3}");
        running = 0;
    }
}
Console.WriteLine($"after 300 steps: test accuracy {TestAccuracy():P1}");
