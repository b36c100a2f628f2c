"""PyTorch side of `scripts/bench-backbone.sh`: the same measurements as `fairlab bench backbone`.

CLIP's vision tower (transformers' `CLIPModel.get_image_features` when transformers is installed,
otherwise a plain PyTorch ViT with the same architecture written below), random weights, eager
mode. Prints one JSON object per dtype, with the keys `fairlab bench backbone` prints.
"""

import argparse
import json
import math
import statistics
import time

import torch
from torch import nn

ARCHS = {
    "vit-b16": dict(hidden=768, layers=12, heads=12, mlp=3072, image=224, patch=16, proj=512),
    "tiny": dict(hidden=64, layers=2, heads=4, mlp=128, image=32, patch=8, proj=32),
}
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


class QuickGelu(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    """A pre-norm CLIP encoder layer."""

    def __init__(self, d, heads, mlp):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.act, self.fc2 = nn.Linear(d, mlp), QuickGelu(), nn.Linear(mlp, d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.ln1(x)
        q, k, v = (p(h).view(b, t, self.heads, d // self.heads).transpose(1, 2) for p in (self.q, self.k, self.v))
        # Eager attention written out, as transformers' CLIP "eager" implementation.
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        x = x + self.o((w @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class ClipVision(nn.Module):
    """CLIP's vision tower + visual projection (`get_image_features`)."""

    def __init__(self, hidden, layers, heads, mlp, image, patch, proj):
        super().__init__()
        self.patch = nn.Conv2d(3, hidden, patch, patch, bias=False)
        self.cls = nn.Parameter(torch.randn(hidden) * 0.02)
        self.pos = nn.Parameter(torch.randn((image // patch) ** 2 + 1, hidden) * 0.02)
        self.pre, self.post = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.blocks = nn.ModuleList(Block(hidden, heads, mlp) for _ in range(layers))
        self.proj = nn.Linear(hidden, proj, bias=False)

    def forward(self, pixels):
        x = self.patch(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], dim=1) + self.pos
        x = self.pre(x)
        for block in self.blocks:
            x = block(x)
        return self.proj(self.post(x[:, 0]))


def build(arch, device, dtype):
    a = ARCHS[arch]
    try:
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        config = CLIPVisionConfig(
            hidden_size=a["hidden"], num_hidden_layers=a["layers"], num_attention_heads=a["heads"],
            intermediate_size=a["mlp"], image_size=a["image"], patch_size=a["patch"], projection_dim=a["proj"],
            attn_implementation="eager",
        )
        model = CLIPVisionModelWithProjection(config)
        forward = lambda m, x: m(pixel_values=x).image_embeds  # noqa: E731
        impl = "transformers CLIPVisionModelWithProjection (eager)"
    except ImportError:
        model = ClipVision(**a)
        forward = lambda m, x: m(x)  # noqa: E731
        impl = "plain PyTorch ViT (transformers absent)"
    model = model.to(device=device, dtype=dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, forward, impl, a


def median_seconds(device, warmup, iters, f):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        f()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        f()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="vit-b16", choices=sorted(ARCHS))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dne-batch", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--tf32", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32
    for name in args.dtypes.split(","):
        dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[name]
        model, forward, impl, a = build(args.arch, device, dtype)
        size = a["image"]
        images = torch.randn(args.batch, 3, size, size, device=device, dtype=dtype)

        def infer():
            with torch.no_grad():
                forward(model, images)

        forward_s = median_seconds(device, args.warmup, args.iters, infer)
        unit = torch.rand(args.dne_batch, 3, size, size, device=device)
        noise = torch.zeros(size, size, device=device, requires_grad=True)
        head = torch.randn(a["proj"], 1, device=device) * 0.05
        targets = (torch.rand(args.dne_batch, 1, device=device) >= 0.5).float()
        mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        std = torch.tensor(STD, device=device).view(1, 3, 1, 1)

        def dne_step():
            x = ((unit + noise - mean) / std).to(dtype)
            logits = forward(model, x).float() @ head
            loss = nn.functional.binary_cross_entropy_with_logits(logits, targets)
            (grad,) = torch.autograd.grad(loss, noise)
            assert grad is not None

        step_s = median_seconds(device, args.warmup, args.iters, dne_step)
        print(json.dumps({
            "framework": f"PyTorch {torch.__version__} ({impl})",
            "arch": args.arch,
            "device": str(device),
            "dtype": name,
            "tf32": args.tf32,
            "batch": args.batch,
            "images_per_s": args.batch / forward_s,
            "forward_ms": forward_s * 1e3,
            "dne_batch": args.dne_batch,
            "dne_step_ms": step_s * 1e3,
        }), flush=True)
        del model, images
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
