"""Train a small CNN built from cconv's convolution variants on scikit-learn's 8x8 digits,
with plain NumPy and cconv's gradients (cconv.grad): no autograd framework.

The network (float32, NCHW):

    x (1, 8, 8)
    stem       conv2d 3x3, 1 -> 16, pad 1                         + ReLU   (16, 8, 8)   --+
    separable  depthwise 3x3 stride 2 + pointwise 1x1, 16 -> 32    + ReLU   (32, 4, 4)     |
    grouped    conv2d 1x1, 32 -> 32, groups 4, channel_shuffle(4) + ReLU   (32, 4, 4)     |
    dilated    conv2d 3x3, dilation 2, pad 2, 32 -> 32             + ReLU   (32, 4, 4)     |
    up         conv_transpose2d 2x2 stride 2, 32 -> 16, + stem (skip) + ReLU (16, 8, 8) <--+
    head       flatten, linear 1024 -> 10, softmax cross-entropy

Optimiser: Adam written in NumPy. The data set ships with scikit-learn (no download).

    python examples/train_digits.py            # full run (15 epochs), >= 95% test accuracy
    python examples/train_digits.py --quick    # a few steps: smoke test
    python examples/train_digits.py --steps 50 --threads 2
"""
import argparse
import sys
import time

import numpy as np

import cconv
from cconv import grad

DT = np.float32


def relu(a):
    return np.maximum(a, 0)


def he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(DT)


def init_params(rng):
    return {
        "stem_w": he(rng, (16, 1, 3, 3), 9), "stem_b": np.zeros(16, DT),
        "dw_w": he(rng, (16, 1, 3, 3), 9), "pw_w": he(rng, (32, 16, 1, 1), 16),
        "sep_b": np.zeros(32, DT),
        "grp_w": he(rng, (32, 8, 1, 1), 8), "grp_b": np.zeros(32, DT),
        "dil_w": he(rng, (32, 32, 3, 3), 32 * 9), "dil_b": np.zeros(32, DT),
        "up_w": he(rng, (32, 16, 2, 2), 32), "up_b": np.zeros(16, DT),
        "fc_w": (rng.standard_normal((1024, 10)) * np.sqrt(1.0 / 1024)).astype(DT),
        "fc_b": np.zeros(10, DT),
    }


def forward(p, x):
    """Returns the logits and the activations the backward pass needs."""
    c = {"x": x}
    c["h1"] = relu(cconv.conv2d(x, p["stem_w"], p["stem_b"], padding=1))
    c["h2"] = relu(cconv.separable_conv2d(c["h1"], p["dw_w"], p["pw_w"], p["sep_b"], stride=2,
                                          padding=1))
    grouped = cconv.conv2d(c["h2"], p["grp_w"], p["grp_b"], groups=4)
    c["h3"] = relu(cconv.channel_shuffle(grouped, 4))
    c["h4"] = relu(cconv.conv2d(c["h3"], p["dil_w"], p["dil_b"], padding=2, dilation=2))
    c["h5"] = relu(cconv.conv_transpose2d(c["h4"], p["up_w"], p["up_b"], stride=2) + c["h1"])
    c["f"] = c["h5"].reshape(len(x), -1)
    return c["f"] @ p["fc_w"] + p["fc_b"], c


def loss_and_grads(p, x, y):
    logits, c = forward(p, x)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(x)
    loss = -logp[np.arange(n), y].mean()
    dlogits = np.exp(logp)
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    g = {"fc_w": c["f"].T @ dlogits, "fc_b": dlogits.sum(0)}
    d5 = (dlogits @ p["fc_w"].T).reshape(c["h5"].shape) * (c["h5"] > 0)
    # up: conv_transpose2d, plus the skip to h1
    g["up_w"] = grad.conv_transpose2d_weight(c["h4"], p["up_w"].shape, d5, stride=2)
    g["up_b"] = grad.bias(d5)
    d4 = grad.conv_transpose2d_input(c["h4"].shape, p["up_w"], d5, stride=2) * (c["h4"] > 0)
    # dilated conv
    g["dil_w"] = grad.conv2d_weight(c["h3"], p["dil_w"].shape, d4, padding=2, dilation=2)
    g["dil_b"] = grad.bias(d4)
    d3 = grad.conv2d_input(c["h3"].shape, p["dil_w"], d4, padding=2, dilation=2) * (c["h3"] > 0)
    # channel shuffle, then the grouped 1x1
    d3 = grad.channel_shuffle_input(d3, 4)
    g["grp_w"] = grad.conv2d_weight(c["h2"], p["grp_w"].shape, d3, groups=4)
    g["grp_b"] = grad.bias(d3)
    d2 = grad.conv2d_input(c["h2"].shape, p["grp_w"], d3, groups=4) * (c["h2"] > 0)
    # depthwise separable block
    d1, g["dw_w"], g["pw_w"], g["sep_b"] = grad.separable_conv2d_grads(
        c["h1"], p["dw_w"], p["pw_w"], d2, stride=2, padding=1)
    d1 = (d1 + d5) * (c["h1"] > 0)        # + the skip connection's gradient
    # stem (its input gradient is not needed)
    g["stem_w"] = grad.conv2d_weight(x, p["stem_w"].shape, d1, padding=1)
    g["stem_b"] = grad.bias(d1)
    return loss, g


class Adam:
    def __init__(self, params, lr=2e-3, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params, grads, lr=None):
        self.t += 1
        lr = self.lr if lr is None else lr
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for k, gk in grads.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * gk
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * gk * gk
            params[k] -= (lr * (self.m[k] / c1) / (np.sqrt(self.v[k] / c2) + self.eps)).astype(DT)


def accuracy(p, x, y, batch=256):
    hits = 0
    for i in range(0, len(x), batch):
        logits, _ = forward(p, x[i:i + batch])
        hits += int((logits.argmax(1) == y[i:i + batch]).sum())
    return hits / len(x)


def load_data(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.images / 16.0).astype(DT)[:, None]          # (1797, 1, 8, 8)
    return train_test_split(x, d.target, test_size=0.2, random_state=seed, stratify=d.target)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    ap.add_argument("--quick", action="store_true", help="smoke test: 10 steps")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="cconv threads (0: OpenMP default)")
    args = ap.parse_args(argv)
    if args.quick and args.steps is None:
        args.steps = 10
    if args.threads:
        cconv.set_num_threads(args.threads)

    x_tr, x_te, y_tr, y_te = load_data(args.seed)
    rng = np.random.default_rng(args.seed)
    params = init_params(rng)
    opt = Adam(params, lr=args.lr)
    steps_per_epoch = -(-len(x_tr) // args.batch)
    total = args.steps if args.steps is not None else args.epochs * steps_per_epoch
    print(f"digits: {len(x_tr)} train / {len(x_te)} test, {sum(v.size for v in params.values())} "
          f"parameters, {total} steps, cconv {cconv.__version__} ({cconv.get_isa()}, "
          f"{cconv.get_num_threads()} threads)", flush=True)
    t0 = time.perf_counter()
    step = 0
    epoch = 0
    while step < total:
        order = rng.permutation(len(x_tr))
        losses = []
        for i in range(0, len(x_tr), args.batch):
            if step >= total:
                break
            idx = order[i:i + args.batch]
            lr = args.lr * 0.5 * (1 + np.cos(np.pi * step / total))     # cosine decay
            loss, g = loss_and_grads(params, x_tr[idx], y_tr[idx])
            opt.step(params, g, lr)
            losses.append(loss)
            step += 1
            if args.steps is not None and args.steps <= 50:
                print(f"step {step:4d}  loss {loss:.4f}", flush=True)
        epoch += 1
        if args.steps is None or args.steps > 50:
            print(f"epoch {epoch:3d}  step {step:5d}  loss {np.mean(losses):.4f}  "
                  f"test acc {accuracy(params, x_te, y_te):.4f}  {time.perf_counter() - t0:6.1f}s",
                  flush=True)
    train_acc, test_acc = accuracy(params, x_tr, y_tr), accuracy(params, x_te, y_te)
    print(f"final: train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f}, "
          f"{time.perf_counter() - t0:.1f}s", flush=True)
    return test_acc


if __name__ == "__main__":
    main()
    sys.exit(0)
