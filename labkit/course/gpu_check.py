"""``python -m labkit gpu-check``: run every GPU path of the course once and print a table.

Each path is small (seconds), checked against a reference computed another way, and
reported as ok / skip (hardware or package missing) / FAIL with the reason. Without a
CUDA GPU it says so in one line. Record the output (GPU, versions, date) in the GPU notes
of the notebooks when you run it on a GPU machine.
"""

from __future__ import annotations

import datetime
import time
import traceback
from collections.abc import Callable

import torch
import torch.nn.functional as F

Row = tuple[str, str, str]  # (path, "ok" | "skip" | "FAIL", detail)


def _amp_gradscaler() -> str:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
    ).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda")
    x, y = torch.randn(512, 64, device="cuda"), torch.randint(0, 10, (512,), device="cuda")
    losses = []
    for _ in range(30):
        with torch.autocast("cuda", dtype=torch.float16):
            out = model(x)
            assert out.dtype == torch.float16, f"autocast gave {out.dtype}"
            loss = F.cross_entropy(out, y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    assert losses[-1] < losses[0], f"loss did not fall: {losses[0]:.3f} -> {losses[-1]:.3f}"
    return f"fp16 loss {losses[0]:.3f} -> {losses[-1]:.3f}, scale {scaler.get_scale():.0f}"


def _sdpa(backend_name: str) -> Callable[[], str]:
    def run() -> str:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = getattr(SDPBackend, backend_name)
        q, k, v = (
            torch.randn(2, 8, 1024, 64, device="cuda", dtype=torch.float16) for _ in range(3)
        )
        ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
        with sdpa_kernel(backend):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        err = (out.float() - ref).abs().max().item()
        assert err < 2e-2, f"max |error| {err:.2e} vs fp32 math"
        return f"causal N=1024 fp16, max |err| {err:.1e}"

    return run


def _flash_attn() -> str:
    from flash_attn import flash_attn_func

    q, k, v = (torch.randn(2, 1024, 8, 64, device="cuda", dtype=torch.float16) for _ in range(3))
    out = flash_attn_func(q, k, v, causal=True)  # (B, N, H, d)
    ref = F.scaled_dot_product_attention(
        *(t.transpose(1, 2).float() for t in (q, k, v)), is_causal=True
    )
    err = (out.transpose(1, 2).float() - ref).abs().max().item()
    assert err < 2e-2, f"max |error| {err:.2e}"
    return f"flash_attn {__import__('flash_attn').__version__}, max |err| {err:.1e}"


def _xformers() -> str:
    import xformers.ops as xops

    q, k, v = (torch.randn(2, 1024, 8, 64, device="cuda", dtype=torch.float16) for _ in range(3))
    out = xops.memory_efficient_attention(q, k, v)
    ref = F.scaled_dot_product_attention(*(t.transpose(1, 2).float() for t in (q, k, v)))
    err = (out.transpose(1, 2).float() - ref).abs().max().item()
    assert err < 2e-2, f"max |error| {err:.2e}"
    return f"xformers, max |err| {err:.1e}"


def _triton_flash(backward: bool) -> Callable[[], str]:
    """labkit's Triton FlashAttention kernels against its PyTorch flash_forward / flash_backward."""

    def run() -> str:
        from labkit import attention
        from labkit.core import bench

        torch.manual_seed(0)
        q, k, v = (torch.randn(2, 4, 1000, 64, device="cuda") for _ in range(3))
        ref_o, ref_lse = attention.flash_forward(q, k, v, causal=True)
        o32, lse32 = attention.triton_flash_forward(q, k, v, causal=True)  # fp32, IEEE dots
        err32 = (o32 - ref_o).abs().max().item()
        assert err32 < 1e-4, f"fp32 forward max |error| {err32:.2e}"
        qh, kh, vh = (t.half() for t in (q, k, v))
        o, lse = attention.triton_flash_forward(qh, kh, vh, causal=True)
        err = max((o.float() - ref_o).abs().max().item(), (lse - ref_lse).abs().max().item())
        assert err < 2e-2, f"fp16 forward max |error| {err:.2e}"
        if not backward:
            cmp = bench.compare(
                {
                    "sdpa": lambda: F.scaled_dot_product_attention(qh, kh, vh, is_causal=True),
                    "triton": lambda: attention.triton_flash_forward(qh, kh, vh, causal=True),
                },
                rounds=5,
            )
            return f"fp32 err {err32:.1e}, fp16 err {err:.1e}; {cmp.verdict('triton')}"
        do = torch.randn_like(ref_o)
        want = attention.flash_backward(q, k, v, ref_o, ref_lse, do, causal=True)
        got = attention.triton_flash_backward(qh, kh, vh, o, lse, do.half(), causal=True)
        rel = max(
            ((a.float() - b).abs().max() / b.abs().max()).item()
            for a, b in zip(got, want, strict=True)
        )
        assert rel < 2e-2, f"fp16 backward max |error| / max |grad| = {rel:.2e}"
        got32 = attention.triton_flash_backward(q, k, v, o32, lse32, do, causal=True)
        rel32 = max(
            ((a - b).abs().max() / b.abs().max()).item() for a, b in zip(got32, want, strict=True)
        )
        assert rel32 < 1e-4, f"fp32 backward max |error| / max |grad| = {rel32:.2e}"
        return f"dq, dk, dv vs flash_backward: fp32 {rel32:.1e}, fp16 {rel:.1e} (relative)"

    return run


def _compile() -> str:
    def chain(x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x * 1.5 + 0.5).sigmoid() * x

    x = torch.randn(4096, 4096, device="cuda")
    fused = torch.compile(chain)
    err = (fused(x) - chain(x)).abs().max().item()
    assert err < 1e-4, f"compiled != eager (max |err| {err:.2e})"
    return f"Inductor/Triton elementwise chain, max |err| {err:.1e}"


def _semi_structured() -> str:
    from labkit import prune

    r = prune.semi_structured_latency(rows=2048, cols=2048, batch=2048, repeats=20)
    return f"2:4 sparse vs dense fp16: {r['speedup']:.2f}x, max |diff| {r['max_abs_diff']:.1e}"


def _module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def rows() -> list[Row]:
    """Run each GPU path; never raises (a failure is a FAIL row with its reason)."""
    checks: list[tuple[str, Callable[[], str], str | None]] = [
        ("01 CUDA autocast fp16 + GradScaler", _amp_gradscaler, None),
        *[
            (f"08 SDPA backend {b}", _sdpa(b), None)
            for b in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH")
        ],
        ("08 flash_attn.flash_attn_func", _flash_attn, "flash_attn"),
        ("08 xformers memory_efficient_attention", _xformers, "xformers"),
        ("08 Triton FlashAttention forward (labkit)", _triton_flash(False), "triton"),
        ("08 Triton FlashAttention backward (labkit)", _triton_flash(True), "triton"),
        ("07 torch.compile on CUDA (Triton)", _compile, "triton"),
        ("04 2:4 semi-structured sparse matmul", _semi_structured, None),
    ]
    out: list[Row] = []
    for name, fn, package in checks:
        if package and not _module_available(package):
            out.append((name, "skip", f"{package} not installed (requirements-gpu.txt)"))
            continue
        t0 = time.perf_counter()
        try:
            detail = fn()
            out.append((name, "ok", f"{detail} ({time.perf_counter() - t0:.1f} s)"))
        except Exception as exc:
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            out.append((name, "FAIL", last[:160]))
    try:
        from labkit.deploy import trt as deploy_trt

        out.extend(deploy_trt.gpu_check_rows())
    except Exception as exc:
        out.append(("09 TensorRT engines", "FAIL", f"{type(exc).__name__}: {exc}"[:160]))
    return out


def main(args: list[str] | None = None) -> int:
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU here (torch.cuda.is_available() is False); nothing to check.")
        return 0
    props = torch.cuda.get_device_properties(0)
    print(
        f"gpu-check {datetime.date.today()}: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
        f"torch {torch.__version__}, CUDA {torch.version.cuda}"
    )
    table = rows()
    width = max(len(r[0]) for r in table)
    for name, status, detail in table:
        print(f"  {name:<{width}}  {status:<4}  {detail}")
    return 1 if any(s == "FAIL" for _, s, _ in table) else 0
