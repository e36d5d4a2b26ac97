#!/usr/bin/python3
"""bench_torch.py — the speed anchor for bench_cnn: PyTorch's MobileNetV2 at
output stride 16 on one 224x224 image, one thread.

The network is defined here (no torchvision): MobileNetV2 1.0 with batch norm
folded away (every conv has a bias), ReLU6, inverted residual blocks, the
1001-way classifier and softmax like the TFLite model; for output stride 16
the last stride-2 depthwise conv runs at stride 1 and every later depthwise
conv is dilated by 2.  Random weights (speed does not depend on them).

Prints the median and fastest ms per image for eager mode, TorchScript
(trace + freeze) and optimize_for_inference, then the best median as
"stride 16: MS ms median, ..." (scripts/bench.sh reads the third field).

    /usr/bin/python3 scripts/bench_torch.py [RUNS]

Exits 0 with a message when PyTorch is not installed (Debian: apt-get
install python3-torch).
"""
import statistics
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:
    print("bench_torch: PyTorch is not installed (apt-get install python3-torch): no anchor")
    sys.exit(0)

SIZE = 224
WARMUP = 5

# (expansion t, output channels c, repeats n, first stride s), Sandler et al. Table 2.
BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def conv(cin, cout, k=1, stride=1, dilation=1, groups=1, relu6=True):
    layers = [nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2),
                        dilation=dilation, groups=groups, bias=True)]
    if relu6:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand, dilation):
        super().__init__()
        hidden = cin * expand
        layers = [conv(cin, hidden)] if expand != 1 else []
        layers += [conv(hidden, hidden, 3, stride, dilation, groups=hidden),
                   conv(hidden, cout, relu6=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    def __init__(self, output_stride=16, classes=1001):
        super().__init__()
        layers = [conv(3, 32, 3, 2)]
        cin, running, dilation = 32, 2, 1
        for t, c, n, s in BLOCKS:
            for i in range(n):
                stride = s if i == 0 else 1
                block_dilation = dilation
                if stride > 1 and running * stride > output_stride:
                    # DeepLab: this block keeps the resolution at the current
                    # rate, every later depthwise conv is dilated by its stride.
                    stride, dilation = 1, dilation * stride
                elif stride > 1:
                    running *= stride
                layers.append(InvertedResidual(cin, c, stride, t, block_dilation))
                cin = c
        layers.append(conv(cin, 1280))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(1280, classes, 1)

    def forward(self, x):
        f = self.features(x)
        logits = self.classifier(f.mean((2, 3), keepdim=True)).flatten(1)
        return f, torch.softmax(logits, 1)


def median_ms(model, image, runs):
    """Wall-clock median and minimum, and the median of the thread's CPU time
    (one thread: the caller's), which a loaded machine inflates less."""
    times, cpu = [], []
    with torch.no_grad():
        for i in range(WARMUP + runs):
            t, c = time.perf_counter(), time.thread_time()
            model(image)
            if i >= WARMUP:
                times.append((time.perf_counter() - t) * 1e3)
                cpu.append((time.thread_time() - c) * 1e3)
    return statistics.median(times), min(times), statistics.median(cpu)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MobileNetV2().eval()
    image = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        f, _ = model(image)
    assert tuple(f.shape) == (1, 1280, 14, 14), f.shape

    variants = [("eager", model)]
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(model, image))
        variants.append(("trace+freeze", traced))
        try:
            variants.append(("optimize_for_inference",
                             torch.jit.optimize_for_inference(torch.jit.trace(model, image))))
        except Exception as e:  # not every build has the MKLDNN passes
            print(f"optimize_for_inference unavailable: {e}")

    best = best_cpu = None
    for name, m in variants:
        med, low, cpu = median_ms(m, image, runs)
        print(f"torch {torch.__version__} {name}: {med:.2f} ms median (min {low:.2f}) "
              f"over {runs} runs, cpu {cpu:.2f} ms median, size {SIZE}, output stride 16, 1 thread")
        best = med if best is None else min(best, med)
        best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
    # The line scripts/bench.sh reads (third field, and the cpu figure).
    print(f"stride 16: {best:.2f} ms median, cpu {best_cpu:.2f} ms median, the best of the variants above")


if __name__ == "__main__":
    main()
