r"""Interview prep: gather every notebook's interview questions and key terms in one place.

The questions and the glossary are read from the notebooks themselves (their "## Interview
corner" and "## Key terms" sections), so this page never drifts from the course. Two lists of
ten classics: SOURCE_CLASSICS, the classic questions of the course's source material in
English, 简体 and 繁體, each linked to the notebook sections that demonstrate it (tests check
that every linked heading exists); and CLASSICS, the course's own, each naming the notebook that
demonstrates it and a phrase that must be found there.

Key-term tables come in two forms, both read by ``glossary``:

    | English | 中文 | meaning |              (the older form: simplified Chinese only)
    | English | 简体 | 繁體 | meaning |        (simplified and traditional Chinese)

Cells are split on unescaped pipes only: ``$\mathrm{KL}(P\|Q)$`` stays one cell.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from labkit.core.paths import NOTEBOOKS, notebook_paths
from labkit.interview.records import Classic, Question, SourceClassic

QUESTION = re.compile(
    r"\*\*(Q\d+\.\s*.+?)\*\*\s*<details>\s*<summary>.*?</summary>(.*?)</details>", re.S
)


CLASSICS = [
    Classic(
        "Why does fp16 training need loss scaling, and why does bf16 usually not?",
        "fp16 has 5 exponent bits: gradients below ~6e-8 flush to zero and the loss signal is lost. "
        "Scaling the loss by S (dynamic: grow after N clean steps, halve and skip the step on inf/nan) "
        "shifts gradients into range; they are unscaled before the optimizer step. bf16 keeps fp32's "
        "8 exponent bits, so it has the same range and needs no scaling, at the cost of precision.",
        "01_mixed_precision",
        "DynamicLossScaler",
    ),
    Classic(
        "Is gradient accumulation exactly equivalent to training with a k-times larger batch?",
        "For the gradient, yes, if each micro-batch loss is divided by k (equal micro-batch sizes, mean "
        "reduction). Not for BatchNorm (statistics per micro-batch), and the optimizer sees one step per "
        "k micro-batches, so the learning rate and schedule must count optimizer steps.",
        "02_gradient_accumulation",
        "allclose",
    ),
    Classic(
        "What does the temperature do in knowledge distillation, and why multiply the soft loss by T²?",
        "Dividing logits by T > 1 softens the teacher's distribution and exposes 'dark knowledge' "
        "(how similar wrong classes are). The soft-loss gradient scales like 1/T², so multiplying by T² "
        "keeps its weight comparable to the hard-label loss when T changes.",
        "03_knowledge_distillation",
        "distillation_loss",
    ),
    Classic(
        "Why does 80 % unstructured sparsity not make my model faster on a CPU?",
        "Dense kernels multiply the zeros anyway; a mask only changes values, not the work. Speed needs "
        "structure the kernel can skip: removed channels (smaller dense layers), 2:4 semi-structured "
        "sparsity on GPUs with sparse tensor cores, or very high sparsity with sparse kernels.",
        "04_pruning",
        "prune_channels",
    ),
    Classic(
        "Symmetric or asymmetric, per-tensor or per-channel quantisation: which when?",
        "r = S(q − Z). Symmetric (Z = 0) suits zero-centred weights and makes integer matmuls cheaper; "
        "asymmetric uses the full range for one-sided activations such as ReLU outputs. Per-channel "
        "scales handle channels with very different ranges (conv/linear weights) at little cost.",
        "05_quantization_math",
        "compute_qparams",
    ),
    Classic(
        "PTQ or QAT: when do you need quantisation-aware training?",
        "Post-training quantisation with good calibration is usually enough at 8 bits. At 4 bits or "
        "below, or for sensitive layers, QAT fine-tunes with fake-quant in the forward pass and a "
        "straight-through estimator in the backward pass so the weights adapt to the rounding.",
        "06_ptq_and_qat",
        "QAT",
    ),
    Classic(
        "How does FlashAttention save memory, and why is it faster when it does the same FLOPs?",
        "It never materialises the N×N score matrix: it streams K/V blocks through on-chip SRAM "
        "and keeps a running max and sum per row (online softmax) to rescale the output. "
        "FLOPs stay O(N²d) (the backward even recomputes the scores: more FLOPs, not fewer); HBM "
        "accesses fall from Θ(Nd + N²) for standard attention to Θ(N²d²/M) (SRAM of M elements, "
        "d ≤ M ≤ Nd), about M/d² times fewer: 20-30x for d = 64 and M ≈ 10⁵; extra memory falls from O(N²) (the score and probability "
        "matrices) to O(N) (per-row statistics; the backward keeps one logsumexp per row). Attention is "
        "memory-bound on GPUs, so fewer bytes moved is what makes it faster (Dao et al. 2022).",
        "08_flash_attention",
        "tiled_attention",
    ),
    Classic(
        "What does TensorRT (or ONNX Runtime) do that PyTorch eager does not?",
        "It compiles the whole graph ahead of time: fuses layers, picks the fastest kernel per shape "
        "(auto-tuning), plans memory, and runs each tensor in the precision the graph gives it. "
        "TensorRT ≥ 10 builds strongly typed networks: FP16 comes from an FP16 ONNX graph and INT8 "
        "from explicit Q/DQ (QuantizeLinear/DequantizeLinear) nodes, placed by PTQ or QAT before "
        "export (TensorRT 11 removed the FP16/INT8 builder flags and INT8 calibrators). Eager mode "
        "runs op by op from Python. The price: static shapes or optimisation profiles, and a "
        "build step per GPU model and TensorRT version.",
        "09_onnx_and_tensorrt",
        "onnxruntime",
    ),
    Classic(
        "Why does a KV cache speed up generation, and what does it cost?",
        "Without it each new token recomputes keys and values of the whole prefix (O(n²) work for n "
        "tokens); with it each step computes only the new token's K/V and attends to the cache. It "
        "costs memory: layers × 2 × heads × head_dim × tokens × bytes per sequence.",
        "11_streaming_generation",
        "use_cache",
    ),
    Classic(
        "What do ZeRO stages 1, 2 and 3 shard, and what does it save?",
        "Stage 1 shards optimizer states, stage 2 also gradients, stage 3 also parameters, across N "
        "data-parallel ranks: per-GPU memory goes from (2+2+K)Ψ to 4Ψ + KΨ/N, 2Ψ + (2+K)Ψ/N and "
        "(4+K)Ψ/N bytes for Ψ parameters in mixed precision with Adam (K = 12).",
        "12_distributed_training",
        "ZeRO",
    ),
]


SOURCE_CLASSICS = [
    SourceClassic(
        "What is the principle of automatic mixed precision (AMP), and what are its numerical "
        "risks?",
        "自动混合精度（AMP）的原理是什么？有哪些数值风险？",
        "自動混合精度（AMP）的原理是什麼？有哪些數值風險？",
        "Principle: run the matmuls and convolutions in 16 bits (fp16 or bf16) under autocast, "
        "keep fp32 master weights, gradients and optimizer state, and let the device's autocast "
        "table cast sensitive ops up to fp32 (CUDA: exp, softmax, sums, norms, losses; CPU: the "
        "losses). It gains 16-bit matmul throughput where the hardware has 16-bit units (tensor "
        "cores, AMX, AVX-512 BF16; emulated bf16 is slower: measure) and stores the saved "
        "activations in 2 bytes instead of 4 (autocast adds 16-bit weight copies); weights, "
        "gradients and Adam state stay 4 + 4 + 8 bytes per parameter. "
        "Risks: fp16 underflow (smallest subnormal 2⁻²⁴ ≈ 6·10⁻⁸: small gradients flush to 0) → "
        "dynamic loss scaling (multiply the loss by S, unscale before clipping, skip the step and "
        "halve S on inf/NaN, double S after N clean steps); fp16 overflow (max 65504: exp(12) is "
        "already inf) → fp32 for exp/softmax/losses; vanishing updates (ε = 2⁻¹⁰ in fp16, 2⁻⁷ in "
        "bf16: w + lr·g rounds back to w) → fp32 master weights. bf16 has fp32's range (no "
        "scaling) but 8 significant bits: compare accuracy over seeds, not one run.",
        (
            ("01_mixed_precision", "2. What goes wrong in 16 bits"),
            ("01_mixed_precision", "3. Dynamic loss scaling from scratch"),
            ("01_mixed_precision", "4.1 Which ops run in which dtype"),
            ("01_mixed_precision", "4.2 What AMP saves in memory"),
        ),
    ),
    SourceClassic(
        "How do you design the teacher model and the student model in knowledge distillation?",
        "知识蒸馏中如何设计教师模型和学生模型？",
        "知識蒸餾中如何設計教師模型和學生模型？",
        "Teacher: the most accurate model you can afford to run over the training set (an "
        "ensemble works), frozen (eval(), no_grad; its logits can be cached). Student: the "
        "architecture that meets the deployment budget (latency, size, MACs), usually the "
        "teacher's family made narrower or shallower, so intermediate features can be matched "
        "too (hint/FitNets loss with a small adapter). Loss: (1 − α)·CE(y, s) + "
        "α·T²·KL(softmax(t/T) ‖ softmax(s/T)), with T ≈ 2-8 and α ≈ 0.5-0.9 chosen on "
        "validation; T² keeps the soft gradient's scale, which shrinks like 1/T². Trade-offs: "
        "a very large capacity gap can hurt (a teacher assistant of middle size bridges it); a "
        "stronger teacher is not always a better teacher. Judge the gain against the same "
        "student trained on the labels alone, over several seeds.",
        (
            ("03_knowledge_distillation", "2. The distillation loss"),
            ("03_knowledge_distillation", "4. Does it help? A small student with few labels"),
        ),
    ),
    SourceClassic(
        "What is the difference between quantization-aware training (QAT) and post-training "
        "quantization (PTQ)?",
        "量化感知训练（QAT）和训练后量化（PTQ）有什么区别？",
        "量化感知訓練（QAT）和訓練後量化（PTQ）有什麼區別？",
        "PTQ quantises a trained model without training: calibrate activation ranges on a few "
        "hundred representative inputs (MinMax, percentile, KL, MSE), fold BatchNorm, quantise "
        "weights per channel; minutes, no labels. It is often close to FP32 at INT8 and "
        "degrades at 4 bits and below or with outlier activations. QAT inserts fake quantisation "
        "q(x) = (clamp(round(x/S) + Z, qmin, qmax) − Z)·S in the forward pass and trains with the "
        "straight-through estimator (∂q/∂x ≈ 1 inside the clamp range, 0 outside), so the "
        "weights adapt to the rounding: it needs the training pipeline, labels and a fine-tune "
        "at a low learning rate, and recovers more accuracy at low bit-widths. Start with PTQ; "
        "use QAT when PTQ's drop exceeds the accuracy budget.",
        (
            ("06_ptq_and_qat", "1. Fake quantisation and the straight-through estimator"),
            ("06_ptq_and_qat", "3. Post-training quantisation: static vs dynamic"),
            ("06_ptq_and_qat", "4. Quantisation-aware training"),
        ),
    ),
    SourceClassic(
        "How do TensorRT and ONNX speed up inference?",
        "TensorRT 和 ONNX 如何加速推理？",
        "TensorRT 和 ONNX 如何加速推論？",
        "ONNX is a portable graph; a runtime optimises the whole graph ahead of time: constant "
        "folding, dead-node elimination, operator fusion (conv + BN + ReLU, GEMM + bias, "
        "attention, layer norm), layout choice, memory planning, one kernel per fused node and "
        "no Python per op. ONNX Runtime adds execution providers (CPU, CUDA, TensorRT) and INT8 "
        "through QDQ models (VNNI / dot-product kernels). TensorRT picks the fastest tactic per "
        "layer and shape on the target GPU and builds strongly typed networks: FP16 from an FP16 "
        "ONNX graph, INT8 from explicit Q/DQ nodes. Costs: export constraints, dynamic shapes "
        "need dynamic axes and optimisation profiles, a build step per GPU and TensorRT version, "
        "and outputs that differ from PyTorch in the last bits (check parity with a tolerance). "
        "Whether it is faster is measured per model and hardware.",
        (
            ("07_operator_fusion", "5. ONNX Runtime graph optimisation levels"),
            ("09_onnx_and_tensorrt", "3. Execution providers and session options"),
            ("09_onnx_and_tensorrt", "4. INT8 with ONNX Runtime"),
            ("09_onnx_and_tensorrt", "5. TensorRT (NVIDIA GPUs)"),
        ),
    ),
    SourceClassic(
        "What is the complexity of FlashAttention, and what are its advantages?",
        "FlashAttention 的复杂度是多少？有什么优势？",
        "FlashAttention 的複雜度是多少？有什麼優勢？",
        "For sequence length N, head dimension d and on-chip SRAM of M elements (d ≤ M ≤ Nd): "
        "standard attention does O(N²d) FLOPs, stores the N×N scores and probabilities (O(N²) "
        "extra memory) and makes Θ(Nd + N²) HBM accesses; FlashAttention does the same O(N²d) "
        "FLOPs (its backward recomputes the scores: slightly more), needs O(N) extra memory "
        "(per-row max and sum, one logsumexp per row kept for the backward) and makes "
        "Θ(N²d²/M) HBM accesses, about M/d² times fewer (20-30x for d = 64, M ≈ 10⁵). "
        "Advantages: exact, not an approximation; longer contexts in the same memory; faster "
        "because attention is memory-bound. Limits: it needs a fused kernel (CUDA or Triton; "
        "SDPA's flash kernel on CPU), supported head dims and dtypes, and it does not reduce the "
        "quadratic FLOPs.",
        (
            ("08_flash_attention", "1. Naive attention stores an N x N matrix"),
            ("08_flash_attention", "3. Tiled attention: FlashAttention's forward pass"),
            ("08_flash_attention", "5. IO complexity (FlashAttention paper, Theorem 2)"),
        ),
    ),
    SourceClassic(
        "What are the challenges of deploying models on edge devices?",
        "在边缘设备上部署模型有哪些挑战？",
        "在邊緣裝置上部署模型有哪些挑戰？",
        "Budgets that bind at once: model size (storage, download), peak RAM (weights + "
        "activations + runtime arena), latency at batch 1 on a few cores or an NPU, and energy "
        "and heat (memory traffic dominates: at 45 nm a 32-bit DRAM read costs about 640 pJ "
        "against 3.7 pJ for a 32-bit float multiply and 0.03 pJ for an 8-bit integer add). "
        "Hardware and runtimes vary (ARM NEON, DSPs, int8-only NPUs; LiteRT/TFLite, Core ML, "
        "ONNX Runtime Mobile, TensorRT on Jetson) and support different operators. Answers: "
        "compress (INT8, channel pruning, distillation, low rank, weight sharing), choose the "
        "architecture for the hardware (hardware-aware search with a measured latency table), "
        "export only supported operators, and measure on the device after each step: "
        "single-thread batch-1 latency, peak memory, size and accuracy against the budget.",
        (
            ("10_edge_deployment", "1. Budgets, as an edge engineer sees them"),
            ("10_edge_deployment", "4. Hardware-aware search"),
            ("10_edge_deployment", "5. Compress to the budget and export for ONNX Runtime"),
        ),
    ),
    SourceClassic(
        "What is streaming generation for, and what are its limitations?",
        "流式生成有什么作用？有哪些局限？",
        "串流生成有什麼作用？有哪些侷限？",
        "It sends tokens as they are produced, so the user starts reading after the time to "
        "first token (TTFT: the prefill of the whole prompt) rather than after the whole answer; "
        "each later token costs one decode step (time per output token), which a KV cache keeps "
        "at one new token's work instead of recomputing the prefix. Limits: it does not shorten "
        "the total generation time (and adds a little per-chunk overhead); decoding is "
        "memory-bound (each token reads every weight and the cache), so batch 1 uses the "
        "hardware poorly and servers batch continuously; the KV cache grows as layers × 2 × "
        "heads × head_dim × tokens × bytes and caps how many users fit; text already sent cannot "
        "be taken back, so filtering and format checks must work on partial output.",
        (
            ("11_streaming_generation", "3. The KV cache"),
            ("11_streaming_generation", "4. Streaming: tokens as they are produced"),
            ("11_streaming_generation", "5. Serving many users: static vs continuous batching"),
        ),
    ),
    SourceClassic(
        "How do you implement AMP and QAT in Python?",
        "如何用 Python 实现 AMP 和 QAT？",
        "如何用 Python 實作 AMP 和 QAT？",
        'AMP in PyTorch: `scaler = torch.amp.GradScaler("cuda")`; per step `with '
        'torch.autocast("cuda", dtype=torch.float16): loss = F.cross_entropy(model(x), y)`, '
        "then `scaler.scale(loss).backward()`, `scaler.unscale_(opt)` before "
        "`clip_grad_norm_`, `scaler.step(opt)`, `scaler.update()` (bf16: no scaler). QAT: "
        "replace weights and activations by fake_quantize(x) = (clamp(round(x/S) + Z, qmin, "
        "qmax) − Z)·S in the forward pass, written as a `torch.autograd.Function` whose backward "
        "passes the gradient where the code is inside [qmin, qmax] and zeroes it outside "
        "(straight-through estimator); start from the trained FP32 model, fine-tune a few epochs "
        "at a low learning rate, freeze the observers and BatchNorm statistics near the end, "
        "then export with Q/DQ nodes. Libraries: torch.ao.quantization (prepare_qat, convert; "
        "deprecated in recent PyTorch) and torchao's QAT.",
        (
            ("01_mixed_precision", "4.5 CUDA: fp16 autocast + GradScaler"),
            ("06_ptq_and_qat", "1. Fake quantisation and the straight-through estimator"),
            ("06_ptq_and_qat", "4. Quantisation-aware training"),
        ),
    ),
    SourceClassic(
        "After quantization the accuracy drops: how do you recover it?",
        "量化后精度下降，如何恢复？",
        "量化後精度下降，如何恢復？",
        "First find where it is lost: quantise one layer at a time (sensitivity) and compare "
        "each tensor's SQNR. Then, cheapest first: per-channel weight scales; better calibration "
        "(percentile, MSE or KL instead of MinMax; more representative calibration data); keep "
        "the sensitive layers (often the first conv and the classifier) in higher precision "
        "(mixed precision); tame outliers by moving a channel's range into the next layer's "
        "weights (equalisation, SmoothQuant); fold BatchNorm before quantising; reduce_range "
        "on CPUs without VNNI; then QAT, optionally distilling from the FP32 model. Re-measure "
        "accuracy against the FP32 baseline on the same test set after each step.",
        (
            ("05_quantization_math", "4. An activation with outliers"),
            ("06_ptq_and_qat", "5. Per-layer sensitivity → mixed precision"),
            ("06_ptq_and_qat", "4. Quantisation-aware training"),
        ),
    ),
    SourceClassic(
        "How do you combine several optimization and compression techniques?",
        "如何组合使用多种优化与压缩技术？",
        "如何組合使用多種最佳化與壓縮技術？",
        "Order them by what they remove and re-measure after each step (accuracy, latency, "
        "size on the target): distil into the smallest architecture that meets the budget "
        "(fewer MACs, needs training); prune channels and fine-tune (a smaller dense model, "
        "real speed-up), re-calibrating BatchNorm; quantise last (PTQ, or QAT when the drop is "
        "too big), so the scales see the final weights; then export and compile (ONNX Runtime "
        "or TensorRT: fusion, INT8 kernels). Errors compound, so fine-tune between steps; "
        "distillation can be the fine-tuning loss of pruning and QAT. The gains do not "
        "multiply: the bottleneck decides (a memory-bound model gains from fewer bytes, a "
        "compute-bound one from fewer MACs). Choose from the accuracy-latency-size Pareto front "
        "under the budget, not simply the last stage.",
        (
            ("13_capstone_pipeline", "0. The pipeline at a glance"),
            ("13_capstone_pipeline", "6. The stage table"),
            ("13_capstone_pipeline", "9. Decision guide: which technique for which bottleneck"),
        ),
    ),
]


def section_link(stem: str, heading: str) -> str:
    """Markdown link to a heading of notebooks/<stem>.ipynb, as JupyterLab anchors it
    (spaces -> '-', backticks dropped): ``[01 · 4.1 Which ops ...](01_x.ipynb#4.1-Which-ops-...)``."""
    _check_section_link(stem, heading)
    anchor = heading.replace("`", "").replace(" ", "-")
    return f"[{stem[:2]} · {heading}]({stem}.ipynb#{anchor})"


def notebook_headings(stem: str, folder: Path = NOTEBOOKS) -> set[str]:
    """The markdown headings of notebooks/<stem>.ipynb, without their #s (empty if missing)."""
    path = _check_notebook(stem, folder)  # folder / f"{stem}.ipynb"
    if not path.exists():
        return set()
    return {ln.lstrip("#").strip() for ln in _markdown(path).splitlines() if ln.startswith("#")}


def notebook_text(stem: str, folder: Path = NOTEBOOKS) -> str:
    """All cell sources of notebooks/<stem>.ipynb as one string ('' if it does not exist)."""
    path = _check_notebook(stem, folder)  # folder / f"{stem}.ipynb"
    if not path.exists():
        return ""
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells)


def _section(markdown: str, heading: str) -> str:
    m = re.search(rf"^##\s+{heading}.*?$(.*?)(?=^##\s|\Z)", markdown, re.M | re.S | re.I)
    return m.group(1) if m else ""


def _markdown(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def course_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The numbered course notebooks, in order (core's one notebook list, numbered ones only)."""
    folder = _check_folder(folder)
    return [p for p in notebook_paths(folder=folder) if re.match(r"\d\d_", p.name)]


def notebook_titles(folder: Path = NOTEBOOKS) -> dict[str, str]:
    """{"01": "01 · Mixed precision", ...}: each course notebook's number and its "# " title."""
    titles = {}
    for path in course_notebooks(folder):
        heading = re.search(r"^#\s+(.+)$", _markdown(path), re.M)
        titles[path.name[:2]] = heading.group(1).strip() if heading else path.stem
    return titles


def questions(folder: Path = NOTEBOOKS) -> list[Question]:
    """Every interview question of every course notebook, in course order."""
    found = []
    for path in course_notebooks(folder):
        section = _section(_markdown(path), "Interview corner")
        for q, a in QUESTION.findall(section):
            found.append(Question(path.stem, q.strip(), a.strip()))
    return found


CELL_SPLIT = re.compile(r"(?<!\\)\|")  # a pipe not preceded by a backslash
HEADERS = {"english": "English", "中文": "简体", "简体": "简体", "繁體": "繁體", "繁体": "繁體",
           "meaning": "meaning"}  # fmt: skip


def split_row(row: str) -> list[str]:
    """Cells of one markdown table row, split on unescaped pipes (``\\|`` stays in its cell)."""
    _check_split_row(row)
    body = row.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [c.strip() for c in CELL_SPLIT.split(body)]


def parse_key_terms(section: str) -> list[dict[str, str]]:
    """Rows of a Key terms table as {"English", "简体", "繁體", "meaning"} (繁體 "" in the
    3-column form). The header row says which column is which; rows whose cell count does
    not match the header are skipped."""
    _check_section(section)
    columns: list[str] | None = None
    out = []
    for line in section.splitlines():
        if not line.strip().startswith("|"):
            continue
        cells = split_row(line)
        if columns is None:
            names = [HEADERS.get(c.lower(), HEADERS.get(c, "")) for c in cells]
            if "English" in names and "meaning" in names and "简体" in names:
                columns = names
            continue
        if all(set(c) <= set("-: ") for c in cells) or len(cells) != len(columns):
            continue
        row = dict(zip(columns, cells, strict=True))
        out.append({k: row.get(k, "") for k in ("English", "简体", "繁體", "meaning")})
    return out


def glossary(folder: Path = NOTEBOOKS) -> list[dict[str, str]]:
    """Key terms of every course notebook: English, 简体, 繁體, meaning, notebook (the first
    notebook that defines a term wins; a later one may fill in a missing 繁體)."""
    terms: dict[str, dict[str, str]] = {}
    for path in course_notebooks(folder):
        for row in parse_key_terms(_section(_markdown(path), "Key terms")):
            key = row["English"].lower()
            if key in terms:
                if not terms[key]["繁體"] and row["繁體"]:
                    terms[key]["繁體"] = row["繁體"]
                continue
            terms[key] = {**row, "notebook": path.stem[:2]}
    return sorted(terms.values(), key=lambda t: t["English"].lower())


# ---- checks: bad input gets one clear error naming the parameter and the fix


def _check_folder(folder: object) -> Path:
    if not isinstance(folder, str | Path):
        raise ValueError(f"folder must be a folder path (str or Path), got {folder!r}.")
    if not Path(folder).is_dir():
        raise ValueError(
            f"folder {str(folder)!r} is not an existing folder: pass the course's notebooks/ "
            "folder (the default, labkit.paths.NOTEBOOKS)."
        )
    return Path(folder)


def _check_stem(stem: object) -> str:
    if not isinstance(stem, str) or not stem.strip() or stem.endswith(".ipynb") or "/" in stem:
        raise ValueError(
            f"stem must be a notebook's name without folder or .ipynb, e.g. "
            f"'08_flash_attention', got {stem!r}."
        )
    return stem


def _check_notebook(stem: object, folder: object) -> Path:
    """folder / f"{stem}.ipynb" for a valid stem and an existing folder (the file may not exist)."""
    return _check_folder(folder) / f"{_check_stem(stem)}.ipynb"


def _check_section_link(stem: object, heading: object) -> None:
    _check_stem(stem)
    if not isinstance(heading, str) or not heading.strip():
        raise ValueError(
            f"heading must be a notebook heading without its #s, e.g. '5. IO complexity', "
            f"got {heading!r}."
        )


def _check_split_row(row: object) -> None:
    if not isinstance(row, str) or "|" not in row:
        raise ValueError(
            f"row must be one markdown table row as a string, e.g. '| a | b |', got {row!r}."
        )


def _check_section(section: object) -> None:
    if not isinstance(section, str):
        raise ValueError(
            f"section must be the markdown text of a Key terms section (one string), got "
            f"{type(section).__name__}: join a list of lines with '\\n'.join(lines)."
        )
